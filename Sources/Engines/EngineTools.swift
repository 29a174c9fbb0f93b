import Foundation
import System

/// Where this host's engine tools are, as the engines themselves would find them (same search
/// order: `UDOCKER_USE_*_EXECUTABLE`, `$UDOCKER_DIR/bin`/`lib`, PATH, the distribution's packages).
public enum EngineTools {
    public struct Found: Sendable, Equatable {
        /// `proot`, `runc/crun`, `fakechroot`, `patchelf`, `apptainer/singularity`.
        public var tool: String
        /// The path, or nil when absent.
        public var path: String?
        /// Execution modes that need it.
        public var modes: String
    }

    public static func locate(environment: EngineEnvironment) -> [Found] {
        let proot = try? PRootEngine(mode: .P1, environment: environment).locateProot()
        let runtime = try? RuncEngine(mode: .R1, environment: environment).locateRuntime().path
        let apptainer = try? SingularityEngine(environment: environment).locateTool().path
        let fakechroot = FakechrootEngine(mode: .F1, environment: environment)
        let libDir = fakechroot.libraryDirectory
        let bundled = ((try? FileManager.default.contentsOfDirectory(atPath: libDir)) ?? []).sorted()
            .filter { $0.hasPrefix("libfakechroot") && $0.hasSuffix(".so") }.map { "\(libDir)/\($0)" }
        var libraries = bundled + fakechroot.systemLibraries
        if let s = environment.hostEnvironment["UDOCKER_FAKECHROOT_SO"], !s.isEmpty {
            libraries.insert(s.contains("/") ? s : "\(libDir)/\(s)", at: 0)
        }
        let library = libraries.first(where: FileInfo.isRegularFile)
        let arch = PRootEngine.udockerArch
        var patchelf = ["\(environment.binDir)/patchelf-\(arch)", "\(environment.binDir)/patchelf"]
        if let s = environment.hostEnvironment["UDOCKER_USE_PATCHELF_EXECUTABLE"], !s.isEmpty, s != "UDOCKER" { patchelf = [s] }
        else { patchelf += searchPath(environment, "patchelf") }
        return [
            Found(tool: "proot", path: proot, modes: "P1 P2 R2 R3"),
            Found(tool: "runc/crun", path: runtime, modes: "R1 R2 R3"),
            Found(tool: "fakechroot", path: library, modes: "F1 F2 F3 F4"),
            Found(tool: "patchelf", path: patchelf.first(where: PRootEngine.isExecutableFile), modes: "optional: F3/F4 use their own ELF patcher"),
            Found(tool: "apptainer/singularity", path: apptainer, modes: "S1"),
        ]
    }

    static func searchPath(_ environment: EngineEnvironment, _ name: String) -> [String] {
        let path = environment.hostEnvironment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        return path.split(separator: ":").filter { $0.hasPrefix("/") }.map { "\($0)/\(name)" }
    }
}
