import FoundationEssentials
import UDockerSystem

/// Where this host's engine tools are, for `install`'s report: the same `ToolLocator` lookup the
/// engines and `doctor` use, so the three can never disagree.
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
        let tools = ToolLocator(environment: environment)
        return [
            Found(tool: "proot", path: try? tools.proot().path, modes: "P1 P2 R2 R3"),
            Found(tool: "runc/crun", path: try? tools.ociRuntime().path, modes: "R1 R2 R3"),
            Found(tool: "fakechroot", path: try? tools.fakechrootLibrary().path, modes: "F1 F2 F3 F4"),
            Found(tool: "patchelf", path: try? tools.patchelf().path, modes: "optional: F3/F4 use their own ELF patcher"),
            Found(tool: "apptainer/singularity", path: try? tools.apptainer().path, modes: "S1"),
        ]
    }
}
