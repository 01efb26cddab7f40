/** The version of this build of Byline, from the root package.json (inlined by the build). */
import pkg from '../../package.json' with { type: 'json' };

export const BYLINE_VERSION: string = pkg.version;
