export {
  chooseExecutionProviders,
  resolveExecutionProviders,
  type BackendInfo,
  type ProviderChoice,
} from './execution-providers.js';
