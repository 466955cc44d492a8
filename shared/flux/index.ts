export { readFlux, type FluxFinding, type FluxMapping, type FluxRead } from './read.js';
