import Foundation
import Testing
import TestSupport

/// A two-node Slurm cluster on this machine (scripts/fixtures/hpc-cluster.sh, run as root): two
/// network namespaces `udnode1`/`udnode2` on a private bridge (198.18.<id>.0/24), each with its
/// own hostname, `/tmp` and `/dev/shm` (tmpfs), a `slurmd` each and `slurmctld` in a third namespace.
/// The test sandboxes ($UDOCKER_E2E_WORK) are the shared filesystem both nodes see at the same
/// path. Built for each test and removed after it; jobs are submitted as the test user from the
/// host. `UDOCKER_E2E_CLUSTER_ID` (0..255) picks the subnet and names, so that two runs coexist.
enum TwoNodeCluster {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("scripts/fixtures/hpc-cluster.sh").path
    static let id = ProcessInfo.processInfo.environment["UDOCKER_E2E_CLUSTER_ID"] ?? "0"
    static let directory =
        ProcessInfo.processInfo.environment["UDOCKER_E2E_CLUSTER_DIR"]
        ?? (id == "0" ? "/tmp/udocker-e2e-cluster" : "/tmp/udocker-e2e-cluster-\(id)")
    static var configuration: String { "\(directory)/slurm.conf" }
    static let nodes = ["udnode1", "udnode2"]

    /// Why no cluster can be built here (nil: it can): `hpc-cluster.sh check` answers (root, `ip`,
    /// Slurm and munge, network namespaces, bridges, veth pairs).
    static let unavailable: String? = {
        guard geteuid() == 0 else { return "needs root (network namespaces, a bridge, munged and the Slurm daemons)" }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = [script, "check"]
        p.environment = environment
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        p.standardInput = FileHandle.nullDevice
        do { try p.run() } catch { return "cannot run \(script): \(error)" }
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        let why = text.trimmingCharacters(in: .whitespacesAndNewlines)
        return p.terminationStatus == 0 ? nil : why.isEmpty ? "hpc-cluster.sh check exited \(p.terminationStatus)" : why
    }()

    static var environment: [String: String] {
        var e = ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "UDOCKER_E2E_CLUSTER_ID": id, "UDOCKER_E2E_CLUSTER_DIR": directory]
        for key in ["UDOCKER_E2E_WORK", "UDOCKER_E2E_REGISTRY"] { e[key] = ProcessInfo.processInfo.environment[key] }
        return e
    }

    static func control(_ verb: String) async throws {
        // Host MPI jobs of the other suites wait meanwhile: the bridge and veths come and go.
        let r = try await HostNetworkGate.with(exclusive: true) {
            try await UserCommand(user: nil, environment: environment, workingDirectory: "/", timeout: .seconds(90))
                .run("/bin/bash", [script, verb])
        }
        try #require(r.succeeded, "hpc-cluster.sh \(verb) failed:\n\(r)")
    }

    /// Runs `body` with the cluster up; removes it afterwards whatever happens.
    static func with(_ body: () async throws -> Void) async throws {
        do {
            try await control("start")
            try await body()
        } catch {
            try? await control("stop")
            throw error
        }
        try await control("stop")
    }
}

let clusterAvailable: ConditionTrait = .enabled(
    if: TwoNodeCluster.unavailable == nil,
    Comment(rawValue: "two-node cluster: \(TwoNodeCluster.unavailable ?? "")"))

extension E2ESandbox {
    /// A client of the two-node cluster (srun, sbatch) as the test user, on the host.
    func cluster(_ program: String, _ args: [String], environment extra: [String: String] = [:]) async throws -> CommandResult {
        try await launch("/usr/bin/\(program)", args, environment: ["SLURM_CONF": TwoNodeCluster.configuration].merging(extra) { $1 })
    }
}

/// How many ranks ran on each node ("rank r of n on HOST" lines).
func ranksPerHost(_ lines: [String]) -> [String: Int] {
    var count: [String: Int] = [:]
    for line in lines where line.hasPrefix("rank ") {
        if let host = line.components(separatedBy: " on ").last { count[host, default: 0] += 1 }
    }
    return count
}

/// The `Info: pulling …` lines: one per pull that a task made.
func pullLines(_ text: String) -> [String] {
    text.split(separator: "\n").map(String.init).filter { $0.hasPrefix("Info: pulling ") }
}

@Suite("E2E HPC: two-node Slurm cluster", e2eEnabled, clusterAvailable, hasOpenMPILauncher, .serialized)
struct ClusterTests {
    static let step = ["--mpi=pmix", "-N2", "-n4"]

    /// `udocker run --pull=reuse --name=job IMG ring`, the step every case launches.
    func ring(_ box: E2ESandbox) -> [String] {
        [box.env.binary, "run", "--pull=reuse", "--name=job", box.env.image("mpi-openmpi"), "ring"]
    }

    /// One container named `job` and one image in the repository at `udockerDir`.
    func expectOneContainer(
        _ box: E2ESandbox, udockerDir: String, _ what: String, sourceLocation: SourceLocation = #_sourceLocation
    )
        async throws
    {
        let env = ["UDOCKER_DIR": udockerDir]
        let ps = try await box.udocker(["ps"], environment: env)
        expectSuccess(ps, sourceLocation: sourceLocation)
        let containers = Array(ps.stdoutLines.dropFirst())
        #expect(
            containers.count == 1 && containers.first?.contains("job") == true, "\(what): exactly one container:\n\(ps)",
            sourceLocation: sourceLocation)
        let images = try await box.udocker(["images"], environment: env)
        #expect(images.stdoutLines.dropFirst().count == 1, "\(what): one image:\n\(images)", sourceLocation: sourceLocation)
    }

    @Test(
        "srun -N2 -n4 run --pull=reuse --name=job IMG ring, shared repository: one pull, one container, 2+2 ranks",
        arguments: hpcModes)
    func srunSharedRepository(_ mode: String) async throws {
        let box = try sandbox("cluster-srun-\(mode)")
        // The engine of containers that `run` creates (srun exports it to the tasks).
        let engine = ["UDOCKER_DEFAULT_EXECUTION_MODE": mode]
        try await TwoNodeCluster.with {
            let r = try await box.cluster("srun", Self.step + ring(box), environment: engine)
            expectRingJob(r, ranks: 4, "\(mode) srun -N2")
            #expect(ranksPerHost(r.stdoutLines) == ["udnode1": 2, "udnode2": 2], "\(mode): two ranks on each node:\n\(r)")
            #expect(pullLines(r.stderr).count == 1, "\(mode): exactly one task pulls (the create lock holds across nodes):\n\(r)")
            // The one container runs on both nodes, with the engine asked for.
            let placed = try await box.cluster(
                "srun",
                [
                    "-N2", "--ntasks-per-node=1", box.env.binary, "run", "--nobanner", "job", "sh", "-c",
                    "echo $(hostname) $container_execmode",
                ],
                environment: engine)
            expectSuccess(placed)
            #expect(placed.stdoutLines.sorted() == ["udnode1 \(mode)", "udnode2 \(mode)"], "\(placed)")
        }
        try await expectOneContainer(box, udockerDir: box.udockerDir, "\(mode), shared repository")
    }

    @Test("sbatch -N2 with the same step: the batch script runs on a node, one pull, one container")
    func sbatchSharedRepository() async throws {
        let box = try sandbox("cluster-sbatch")
        try box.makeUserDirectory(box.scratch)
        let job = "\(box.scratch)/job.sh", out = "\(box.scratch)/job.out"
        try box.writeUserFile(
            job,
            """
            #!/bin/sh
            #SBATCH -N 2
            #SBATCH -n 4
            echo "batch on $(hostname)"
            srun \((Self.step + ring(box)).joined(separator: " "))

            """, mode: 0o755)
        try await TwoNodeCluster.with {
            let r = try await box.cluster("sbatch", ["--wait", "-o", out, job])
            expectSuccess(r)
            // sbatch writes the steps' stdout and stderr into the same file.
            let text = box.readFile(out) ?? ""
            let lines = text.split(separator: "\n").map(String.init)
            #expect(lines.first == "batch on udnode1", "the script runs on the first node:\n\(text)")
            #expect(lines.filter { $0.hasPrefix("ring: size=4 sum=6 library=Open MPI") }.count == 1, "one 4-rank job:\n\(text)")
            #expect(ranksPerHost(lines) == ["udnode1": 2, "udnode2": 2], "two ranks on each node:\n\(text)")
            #expect(pullLines(text).count == 1, "exactly one task pulls:\n\(text)")
            for noise in ["PMIX ERROR", "ORTE_ERROR", "Error:", "WARNING"] { #expect(!text.contains(noise), "'\(noise)':\n\(text)") }
        }
        try await expectOneContainer(box, udockerDir: box.udockerDir, "shared repository")
    }

    @Test("UDOCKER_DIR on the node's /tmp: a repository per node, one pull on each")
    func nodeLocalRepository() async throws {
        let box = try sandbox("cluster-local")
        let local = "/tmp/udocker-e2e-nodelocal-\(UUID().uuidString.prefix(8))"
        try await TwoNodeCluster.with {
            let r = try await box.cluster("srun", Self.step + ring(box), environment: ["UDOCKER_DIR": local])
            expectRingJob(r, ranks: 4, "srun -N2, node-local repositories")
            #expect(ranksPerHost(r.stdoutLines) == ["udnode1": 2, "udnode2": 2], "two ranks on each node:\n\(r)")
            #expect(pullLines(r.stderr).count == 2, "one pull per node:\n\(r)")
            // Each node's /tmp (a tmpfs of the node), asked on the node.
            for node in TwoNodeCluster.nodes {
                let on = ["-w", node, "-N1", "-n1", box.env.binary]
                let ps = try await box.cluster("srun", on + ["ps"], environment: ["UDOCKER_DIR": local])
                expectSuccess(ps)
                let containers = Array(ps.stdoutLines.dropFirst())
                #expect(containers.count == 1 && containers.first?.contains("job") == true, "\(node): one container:\n\(ps)")
                let images = try await box.cluster("srun", on + ["images"], environment: ["UDOCKER_DIR": local])
                #expect(images.stdoutLines.dropFirst().count == 1, "\(node): one image:\n\(images)")
            }
            #expect(!box.exists(local), "nothing on the host's /tmp")
            #expect(!box.exists(box.udockerDir), "nothing in the shared sandbox's repository")
        }
    }
}
