import Foundation
import Testing
@testable import Engines
#if canImport(Glibc)
import Glibc
#endif

/// An engine added in one file: it runs the plan's command on the host, no chroot, straight from
/// the container's tree (busybox is static), and records what the runner handed it.
struct HostStandInEngine: ExecutionEngine {
    var mode: ExecutionMode
    var environment: EngineEnvironment
    var io: StandardIO
    var recorder: Recorder

    final class Recorder: @unchecked Sendable {
        var plans: [ExecutionPlan] = []
        var handOver: ExecutionMode?
        var hidden: Set<PlanWarning.Kind> = []
        /// `hiddenWarnings` of the last run as the runner saw it.
        var seenHidden: Set<PlanWarning.Kind> = []
    }

    static let modes: [ExecutionMode] = [.P1, .P2]
    static func capabilities(of mode: ExecutionMode) -> EngineCapabilities { [.nestsUnderPRoot] }

    func prepare(_ run: inout EngineRun) throws -> String {
        run.handOver = recorder.handOver
        run.hiddenWarnings = recorder.hidden
        recorder.handOver = nil
        return run.container.root
    }

    func launch(_ plan: ExecutionPlan, prepared root: String, run: EngineRun) throws -> Launch {
        recorder.plans.append(plan)
        recorder.seenHidden = run.hiddenWarnings
        return Launch(
            path: root + plan.executable, arguments: plan.arguments, environment: plan.environment,
            cwd: root + plan.cwd, summary: ["stand-in: \(plan.arguments)"])
    }
}

@Suite(.serialized) struct StandInEngineTests {
    /// The standard table plus the stand-in, which now serves P2.
    func registry(_ recorder: HostStandInEngine.Recorder) -> EngineRegistry {
        EngineRegistry.standard.registering(
            .init(HostStandInEngine.self, modes: [.P2]) { m, e, io in
                HostStandInEngine(mode: m, environment: e, io: io, recorder: recorder)
            })
    }

    func run(
        _ c: BusyboxContainer, _ o: RunOptions, recorder: HostStandInEngine.Recorder,
        mode: ExecutionMode = .P2
    ) throws -> RunResult {
        let registry = registry(recorder)
        return try withCapturedIO(c, input: nil) { io in
            let engine = try registry.engine(for: mode, environment: c.environment(), io: io)
            return try EngineRunner(registry: registry).run(engine, container: c.instance(), options: o)
        }
    }

    @Test func theRegistryServesTheStandInThroughTheOneRunner() throws {
        let c = try BusyboxContainer()
        let recorder = HostStandInEngine.Recorder()
        #expect(try registry(recorder).engine(for: .P2, environment: c.environment()) is HostStandInEngine)
        #expect(try EngineRegistry.standard.engine(for: .P2, environment: c.environment()) is PRootEngine)
        let r = try run(
            c,
            options(["sh", "-c", "echo $MYVAR in $(pwd); exit 42"]) {
                $0.env = ["MYVAR=planned"]; $0.workdir = "/data"
            },
            recorder: recorder)
        #expect(r.status == 42)
        #expect(r.output == "planned in \(c.root)/data\n", "\(r.error)")
        #expect(recorder.plans.count == 1 && recorder.plans.first?.mode == .P2)
        // The runner removed the plan's per-run files (passwd/group copies).
        #expect(try FileManager.default.contentsOfDirectory(atPath: c.tmpDir).isEmpty)
    }

    /// An engine hides plan warnings by their kind (Fakechroot: the user it chose itself); the
    /// others are printed with the same text as before they were typed.
    @Test func anEngineHidesPlanWarningsByKind() throws {
        let c = try BusyboxContainer()
        let recorder = HostStandInEngine.Recorder()
        recorder.hidden = [.userWillBeCreated]
        _ = try run(c, options(["true"]) { $0.user = "4242:4343" }, recorder: recorder)
        let plan = try #require(recorder.plans.last)
        #expect(Set(plan.warnings.map(\.kind)) == [.userWillBeCreated, .homeNotFound])
        let all = PlanWarning.shown(plan.warnings, hiding: [])
        #expect(all.contains("non-existing user will be created"), "\(all)")
        #expect(all.contains("home directory /home/udoc4242 not found in the container, using /"), "\(all)")
        // What the runner printed for this engine: the hidden kind is gone, the other stays.
        let shown = PlanWarning.shown(plan.warnings, hiding: recorder.seenHidden)
        #expect(shown == ["home directory /home/udoc4242 not found in the container, using /"], "\(shown)")
    }

    @Test func capabilitiesItLacksAreRefusedOrWarnedByThePlan() throws {
        let c = try BusyboxContainer()
        let recorder = HostStandInEngine.Recorder()
        #expect {
            _ = try run(c, options(["true"]) { $0.volumes = [c.hostDir + ":/data:ro"] }, recorder: recorder)
        } throws: { ($0 as? EngineError)?.message.hasPrefix("read-only volumes (-v host:cont:ro) are not supported by P2") == true }
        #expect(recorder.plans.isEmpty)
        _ = try run(c, options(["true"]) { $0.kernel = "6.0.0" }, recorder: recorder)
        #expect(recorder.plans.last?.warnings.map(\.message).contains("--kernel is ignored by P2 (P1/P2 only)") == true)
        _ = try run(c, options(["true"]) { $0.devices = ["/dev/null"] }, recorder: recorder)
        #expect(
            recorder.plans.last?.warnings.map(\.message).contains("--device is only used by the R modes (P2 sees the host /dev)") == true)
        // An overlay container: refused by the runner before anything is prepared, status 1.
        var overlay = c.instance()
        overlay.overlay = .init(cacheDirectory: c.tmpDir, lowers: [String(repeating: "a", count: 64)], upper: c.tmpDir, work: c.tmpDir)
        let planned = recorder.plans.count
        let registry = registry(recorder)
        #expect {
            _ = try withCapturedIO(c, input: nil) { io in
                try EngineRunner(registry: registry).run(
                    try registry.engine(for: .P2, environment: c.environment(), io: io), container: overlay,
                    options: options(["true"]), label: "mybox")
            }
        } throws: {
            let e = $0 as? EngineError
            return e?.exitStatus == 1
                && e?.message == "overlay container mybox runs in N1 only; make it flat first: udocker setup --execmode=P2 mybox"
        }
        #expect(recorder.plans.count == planned)
    }

    @Test func aHandOverRunsTheOtherModesEngine() throws {
        let c = try BusyboxContainer()
        let recorder = HostStandInEngine.Recorder()
        recorder.handOver = .P2
        let registry = EngineRegistry.standard.registering(
            .init(HostStandInEngine.self) { m, e, io in
                HostStandInEngine(mode: m, environment: e, io: io, recorder: recorder)
            })
        let r = try withCapturedIO(c, input: nil) { io in
            let engine = try registry.engine(for: .P1, environment: c.environment(), io: io)
            return try EngineRunner(registry: registry).run(engine, container: c.instance(), options: options(["echo", "handed"]))
        }
        #expect(r.output == "handed\n")
        #expect(recorder.plans.map(\.mode) == [.P2])
    }
}
