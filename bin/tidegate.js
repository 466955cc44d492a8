#!/usr/bin/env node
// The installed CLI: the bundle `npm run build` writes.
import '../dist/cli/tidegate.mjs';
