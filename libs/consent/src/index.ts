// Public API of @aimass/consent (filled in as it is built).
export {};
