// One linter config: typescript-eslint with type-checked rules (STYLE.md), plus the dependency direction:
// services import core/, never each other (enforced here, not by hope).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const services = ['gateway', 'processors', 'alerting', 'simulator', 'dashboards'];
// Operator tools that drive several services' code (they may import services; no service imports them).
const tools = ['deadletters'];

/** In service `s`, importing any other service is an error. */
function serviceBoundary(s) {
  return {
    files: [`${s}/**/*.ts`],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [...services, ...tools]
            .filter((o) => o !== s)
            .map((o) => ({ group: [`../${o}/*`, `../../${o}/*`, `**/${o}/*`], message: `${s}/ must not import ${o}/: share code through core/ (STYLE.md)` })),
        },
      ],
    },
  };
}

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', '.data/**', '.stryker-tmp/**', 'reports/**', 'eslint.config.js'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-restricted-syntax': [
        'error',
        { selector: "MemberExpression[object.name='process'][property.name='exit']", message: 'only main.ts may exit the process' },
      ],
    },
  },
  ...services.map(serviceBoundary),
  // core/ is imported by everyone and imports no service.
  {
    files: ['core/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: services.map((o) => ({ group: [`../${o}/*`], message: 'core/ must not import a service' })) }],
    },
  },
  // Plain-JS scripts (they run before npm ci) are not part of the TypeScript project.
  {
    files: ['**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: { parserOptions: { projectService: false, project: false }, globals: { process: 'readonly', console: 'readonly' } },
  },
  {
    files: [
      '**/main.ts',
      'devstack/**/*.ts',
      'scripts/**',
      'bench/bench.ts',
      'bench/counter.ts',
      'bench/cpu-profile.ts',
      'bench/naive-bridge.ts',
      'bench/raw-broker.ts',
    ],
    rules: { 'no-restricted-syntax': 'off' },
  },
  {
    files: ['**/*.test.ts', 'test/**/*.ts'],
    rules: { '@typescript-eslint/no-non-null-assertion': 'off' },
  },
);
