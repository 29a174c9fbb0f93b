import CLinux
import FoundationEssentials
import Store

/// The engines this build knows: one line per engine (its modes, capabilities, constructor and
/// host check). `EngineSelector`, `run`, `setup` and `doctor` all read this table.
public struct EngineRegistry: Sendable {
    public struct Entry: Sendable {
        public var modes: [ExecutionMode]
        /// The engine's own declaration (`ExecutionEngine.capabilities(of:)`), read, never restated.
        public var capabilitiesOf: @Sendable (ExecutionMode) -> EngineCapabilities
        public var make: @Sendable (ExecutionMode, EngineEnvironment, StandardIO) -> any ExecutionEngine
        /// Why the mode cannot run on this host (one line), or nil when it can.
        public var problem: @Sendable (ExecutionMode, ToolLocator) -> String?

        /// `engine` serves `modes` (by default all it declares).
        public init<E: ExecutionEngine>(
            _ engine: E.Type, modes: [ExecutionMode]? = nil,
            make: @escaping @Sendable (ExecutionMode, EngineEnvironment, StandardIO) -> any ExecutionEngine,
            problem: @escaping @Sendable (ExecutionMode, ToolLocator) -> String? = { _, _ in nil }
        ) {
            self.modes = modes ?? E.modes
            self.capabilitiesOf = { E.capabilities(of: $0) }
            self.make = make; self.problem = problem
        }
    }

    public private(set) var entries: [Entry]

    public init(entries: [Entry]) { self.entries = entries }

    public static let standard = EngineRegistry(entries: [
        Entry(
            NativeEngine.self, make: { _, e, io in NativeEngine(environment: e, io: io) },
            problem: { _, _ in HostProbe.userNamespaceProblem() }),
        Entry(RuncEngine.self, make: { m, e, io in RuncEngine(mode: m, environment: e, io: io) }, problem: runcProblem),
        Entry(
            PRootEngine.self, make: { m, e, io in PRootEngine(mode: m, environment: e, io: io) },
            problem: { _, tools in
                do { _ = try tools.proot() } catch { return "proot not found" }
                return HostProbe.ptraceProblem()
            }),
        Entry(
            FakechrootEngine.self, make: { m, e, io in FakechrootEngine(mode: m, environment: e, io: io) },
            problem: { _, tools in (try? tools.fakechrootLibrary()) == nil ? "libfakechroot not found" : nil }),
        Entry(
            SingularityEngine.self, make: { _, e, io in SingularityEngine(environment: e, io: io) },
            problem: { _, tools in (try? tools.apptainer()) == nil ? "apptainer/singularity not found" : nil }),
    ])

    private static let runcProblem: @Sendable (ExecutionMode, ToolLocator) -> String? = { mode, tools in
        do { _ = try tools.ociRuntime(mode: mode) } catch { return "runc not found" }
        return HostProbe.userNamespaceProblem() == nil ? nil : "rootless runc needs user namespaces too"
    }

    /// This table with `entry` in front: it serves its modes from now on.
    public func registering(_ entry: Entry) -> EngineRegistry {
        EngineRegistry(entries: [entry] + entries)
    }

    public func entry(for mode: ExecutionMode) -> Entry? { entries.first { $0.modes.contains(mode) } }

    public func capabilities(of mode: ExecutionMode) -> EngineCapabilities { entry(for: mode)?.capabilitiesOf(mode) ?? [] }

    /// The engine for `mode`; modes with no engine throw `EngineError.unsupportedMode`.
    public func engine(
        for mode: ExecutionMode, environment: EngineEnvironment,
        io: StandardIO = .inherit
    ) throws -> any ExecutionEngine {
        guard let entry = entry(for: mode) else { throw EngineError.unsupportedMode(mode) }
        return entry.make(mode, environment, io)
    }
}

/// Chooses engines (through `EngineRegistry.standard`).
public enum EngineSelector {
    /// The engine for `mode`; modes not implemented yet throw `EngineError.unsupportedMode`.
    public static func engine(for mode: ExecutionMode, environment: EngineEnvironment) throws -> any ExecutionEngine {
        try EngineRegistry.standard.engine(for: mode, environment: environment)
    }

    /// The order in which a container with no mode of its own tries the engines: the fastest and
    /// most faithful first (N1: own code, no tool), then rootless runc, PRoot, and Fakechroot
    /// (which works almost anywhere but cannot change the user).
    public static let automaticOrder: [ExecutionMode] = [.N1, .R1, .P1, .F3]

    /// Why `mode` cannot run on this host (one line), or nil when it can: the same probes as
    /// `udocker doctor`.
    public static func problem(with mode: ExecutionMode, environment: EngineEnvironment) -> String? {
        guard let entry = EngineRegistry.standard.entry(for: mode) else { return "unsupported mode" }
        return entry.problem(mode, ToolLocator(environment: environment))
    }

    /// The first engine of `automaticOrder` after `failed` that works here (nil when none does),
    /// and why each one before it does not (`failed`'s own reason first).
    public static func fallback(
        after failed: ExecutionMode, reason: String,
        environment: EngineEnvironment
    ) -> (mode: ExecutionMode?, skipped: [String]) {
        var skipped = ["\(failed.rawValue): \(reason)"]
        for mode in automaticOrder.drop(while: { $0 != failed }).dropFirst() {
            guard let why = problem(with: mode, environment: environment) else { return (mode, skipped) }
            skipped.append("\(mode.rawValue): \(why)")
        }
        return (nil, skipped)
    }

    /// The best engine of `automaticOrder` that works here (N1 when nothing does: its error then
    /// says why).
    public static func defaultMode(environment: EngineEnvironment) -> ExecutionMode {
        automaticOrder.first { problem(with: $0, environment: environment) == nil } ?? .N1
    }

    /// nil when N1 can work here, else why not (one line).
    public static func userNamespaceProblem() -> String? { HostProbe.userNamespaceProblem() }
}
