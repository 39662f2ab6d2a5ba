import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', 'proto/gen/', 'bin/', '.test-output/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      // A role folder may use core/ and the generated wire types, never a sibling role.
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['../ps/*', '../worker/*', '../coordinator/*', '../client/*'],
              message: 'roles talk over gRPC; share code through core/',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['test/**/*.ts'],
    rules: { 'no-restricted-imports': 'off' },
  },
);
