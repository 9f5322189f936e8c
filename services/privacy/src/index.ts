// Public API of @aimass/privacy (filled in as the service is built).
export {};
