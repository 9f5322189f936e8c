// One flat config for the whole workspace; each project lints its own folder with it.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', '**/src/gen/**', '**/*.d.ts', '.nx/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-console': 'error',
      // Siblings import a capability only through its package entry, never a deep path.
      'no-restricted-imports': [
        'error',
        { patterns: [{ group: ['@aimass/*/src/*', '@aimass/*/dist/*'], message: 'Import the package entry, not its internals.' }] },
      ],
    },
  },
  {
    files: ['**/*.mjs', '**/*.js'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly' } },
  },
  {
    files: ['tools/**/*.ts', '**/scripts/**', '**/bench/**', '**/examples/**'],
    rules: { 'no-console': 'off' },
  },
);
