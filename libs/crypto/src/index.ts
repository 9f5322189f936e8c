// Public API of @aimass/crypto (filled in as it is built).
export {};
