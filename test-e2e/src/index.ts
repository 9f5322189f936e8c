export { repositoryRoot } from './paths.js';
