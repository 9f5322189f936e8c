export { healthStatus, reflectedServices } from './grpc-probes.js';
export { repositoryRoot } from './paths.js';
