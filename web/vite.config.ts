import { defineConfig } from 'vitest/config';

// The console is served by `custos serve` at /console/ under a strict Content-Security-Policy
// (script-src 'self'; style-src 'self'): nothing may be inlined into index.html or the CSS.
export default defineConfig({
  base: '/console/',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    assetsInlineLimit: 0,
    cssCodeSplit: false,
    modulePreload: { polyfill: false },
    sourcemap: false,
    target: 'es2022',
  },
  test: {
    environment: 'node',
    include: ['src/**/*.test.ts'],
  },
});
