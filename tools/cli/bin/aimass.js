#!/usr/bin/env node
// Thin launcher so `npx aimass` works from the workspace; the command lives in dist/main.js.
import '../dist/main.js';
