import Foundation
import Testing
import TestSupport

/// A one-node Slurm on loopback (scripts/fixtures/hpc-slurm.sh, run as root): started for each
/// test and stopped after it, jobs submitted as the unprivileged test user.
enum SlurmCluster {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("scripts/fixtures/hpc-slurm.sh").path
    static let directory = ProcessInfo.processInfo.environment["UDOCKER_E2E_SLURM_DIR"] ?? "/tmp/udocker-e2e-slurm"
    static var configuration: String { "\(directory)/slurm.conf" }

    static var available: Bool {
        geteuid() == 0
            && ["/usr/sbin/slurmctld", "/usr/sbin/slurmd", "/usr/sbin/munged", "/usr/bin/srun"]
                .allSatisfy(FileManager.default.isExecutableFile(atPath:))
    }

    static func control(_ verb: String) async throws {
        let r = try await UserCommand(
            user: nil,
            environment: [
                "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
                "UDOCKER_E2E_SLURM_DIR": directory,
            ],
            workingDirectory: "/", timeout: .seconds(60)
        ).run("/bin/bash", [script, verb])
        try #require(r.succeeded, "hpc-slurm.sh \(verb) failed:\n\(r)")
    }

    /// Runs `body` with the daemons up; stops them afterwards whatever happens.
    static func with(_ body: () async throws -> Void) async throws {
        try await control("start")
        do { try await body() } catch { try? await control("stop"); throw error }
        try await control("stop")
    }
}

let slurmAvailable: ConditionTrait = .enabled(
    if: SlurmCluster.available,
    "needs root (to start munged/slurmctld/slurmd) and slurm-wlm + munge (scripts/test-deps.sh)")

extension E2ESandbox {
    /// A Slurm client as the test user; `mode` reaches the tasks as the default engine of
    /// containers that `run` creates (`UDOCKER_DEFAULT_EXECUTION_MODE`, srun exports it).
    func slurm(_ program: String, _ args: [String], mode: String? = nil) async throws -> CommandResult {
        var environment = ["SLURM_CONF": SlurmCluster.configuration]
        if let mode { environment["UDOCKER_DEFAULT_EXECUTION_MODE"] = mode }
        return try await launch("/usr/bin/\(program)", args, environment: environment)
    }
}

@Suite("E2E HPC: Slurm", e2eEnabled, slurmAvailable, .serialized)
struct SlurmTests {
    @Test("srun -n2 udocker run: each task sees its own SLURM_* without --hostenv", arguments: hpcModes)
    func perTaskVariables(_ mode: String) async throws {
        let box = try sandbox("slurmenv-\(mode)")
        _ = try await box.pullAndCreate(box.env.debian, name: "deb")
        if mode != "N1" { try requireSuccess(try await box.udocker(["setup", "--execmode=\(mode)", "deb"])) }
        try await SlurmCluster.with {
            let r = try await box.slurm(
                "srun",
                [
                    "-n2", box.env.binary, "run", "--nobanner", "deb", "sh", "-c",
                    "echo task=$SLURM_PROCID/$SLURM_NTASKS job=${SLURM_JOB_ID:+set} host=${HOSTNAME_UNSET:-none}",
                ])
            expectSuccess(r)
            #expect(r.stdoutLines.sorted() == ["task=0/2 job=set host=none", "task=1/2 job=set host=none"], "\(mode): \(r)")
        }
    }

    @Test("srun --mpi=pmix -n4 udocker run IMG ring: one 4-rank job", hasOpenMPILauncher, arguments: pmixRankModes)
    func srunRing(_ mode: String) async throws {
        let box = try sandbox("srun-\(mode)")
        try await box.mpiContainer("mpi-openmpi", name: "mpi", mode: mode)
        try await SlurmCluster.with {
            let r = try await box.slurm("srun", ["--mpi=pmix", "-n4", box.env.binary, "run", "--nobanner", "mpi", "ring"])
            expectRingJob(r, ranks: 4, "\(mode) srun")
        }
    }

    @Test("srun --mpi=none -n2 with an MPI program: refused, not two singletons")
    func srunWithoutMPIPlugin() async throws {
        let box = try sandbox()
        try await box.mpiContainer("mpi-openmpi", name: "mpi", mode: "N1")
        try await SlurmCluster.with {
            let r = try await box.slurm("srun", ["--mpi=none", "-n2", box.env.binary, "run", "--nobanner", "mpi", "ring"])
            #expect(r.status != 0, "\(r)")
            #expect(ringOutput(r).ring.isEmpty, "\(r)")
            #expect(r.stderrLines.filter { $0.hasPrefix("Error:") && $0.contains("--mpi=pmix") }.count == 2, "\(r)")
        }
    }

    @Test("an sbatch script runs udocker in its steps", arguments: hpcModes)
    func sbatchScript(_ mode: String) async throws {
        let box = try sandbox("sbatch-\(mode)")
        try box.makeUserDirectory(box.scratch)
        let job = "\(box.scratch)/job.sh", out = "\(box.scratch)/job.out"
        try box.writeUserFile(
            job,
            """
            #!/bin/sh
            #SBATCH -n 2
            \(box.env.binary) run --nobanner --pull=reuse --name=deb \(box.env.debian) sh -c 'echo batch=$SLURM_JOB_ID'
            srun \(box.env.binary) run --nobanner deb sh -c 'echo step=$SLURM_PROCID-$container_execmode'

            """, mode: 0o755)
        try await SlurmCluster.with {
            let r = try await box.slurm("sbatch", ["--wait", "-o", out, job], mode: mode)
            expectSuccess(r)
            // sbatch writes stderr (the pull's Info lines) into the same file.
            let lines = (box.readFile(out) ?? "").split(separator: "\n").map(String.init)
                .filter { $0.hasPrefix("batch=") || $0.hasPrefix("step=") }
            #expect(lines.count == 3 && lines.first?.hasPrefix("batch=") == true && lines.first != "batch=", "\(lines)\n\(r)")
            #expect(Set(lines.dropFirst()) == ["step=0-\(mode)", "step=1-\(mode)"], "\(mode): \(lines)")
        }
    }

    @Test(
        "srun -n4 run --pull=reuse --name=job on an empty repository: one pull, one container, four outputs",
        arguments: hpcModes)
    func manyTasksOneImage(_ mode: String) async throws {
        let box = try sandbox("manytasks-\(mode)")
        try await SlurmCluster.with {
            let r = try await box.slurm(
                "srun",
                [
                    "-n4", box.env.binary, "run", "--nobanner", "--pull=reuse", "--name=job",
                    box.env.debian, "sh", "-c", "echo out-$SLURM_PROCID-$container_execmode",
                ], mode: mode)
            expectSuccess(r)
            #expect(r.stdoutLines.sorted() == (0..<4).map { "out-\($0)-\(mode)" }, "\(mode): \(r)")
        }
        let ps = try await box.psLines()
        #expect(ps.count == 1 && ps.first?.contains("job") == true, "exactly one container:\n\(ps)")
        #expect(try await box.imageLines().count == 1)
    }
}
