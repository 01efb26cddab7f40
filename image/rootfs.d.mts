// Types for image/rootfs.mjs (plain JavaScript: the image build runs with node, without a loader).
export declare const SIZE_LIMIT_BYTES: number;
export declare const RUNTIME_UID: number;
export declare const RUNTIME_PACKAGES: string[];
export declare const SYSTEM_LIBRARIES: { package: string; path: string }[];
export declare const LICENSE_PACKAGES: string[];
export declare function lockedVersion(lock: unknown, name: string): string;
export declare function runtimeClosure(modulesDir: string, roots: string[], skip?: string[]): string[];
export declare function etcFiles(): Record<string, string>;
export declare function treeSize(dir: string): number;
export declare function describeSize(bytes: number): string;
