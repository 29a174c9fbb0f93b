import Foundation
import Testing
import TestSupport

/// Engines the HPC cases run on (issue 12): native, PRoot, Fakechroot and runc.
let hpcModes = ["N1", "P1", "F3", "R1"]

/// Engines where a rank can join a PMIx job: the launcher's PMIx server accepts only the user's
/// own uid, so every engine runs a rank as the user (R1 in an outer user namespace, which needs
/// `unshare`, `newuidmap` and /etc/subuid: see `rankUnderR1WithoutSubordinateIDs`).
let pmixRankModes = hpcModes

let hasOpenMPILauncher: ConditionTrait = .enabled(
    if: FileManager.default.isExecutableFile(atPath: "/usr/bin/mpirun"),
    "needs Open MPI's mpirun on the host (scripts/test-deps.sh installs openmpi-bin)")

/// MPICH's own launcher (Debian's `mpich` package; its alternatives stay below Open MPI's, so
/// `mpirun` remains Open MPI): Hydra hands each rank its PMI-1 socket as `PMI_FD`.
let hasHydraLauncher: ConditionTrait = .enabled(
    if: FileManager.default.isExecutableFile(atPath: "/usr/bin/mpiexec.hydra"),
    "needs MPICH's mpiexec.hydra on the host (scripts/test-deps.sh installs mpich)")

extension E2ESandbox {
    /// `mpi-openmpi` or `mpi-mpich` (scripts/fixtures/hpc-images.sh), pulled and created as `name`,
    /// set to `mode`.
    func mpiContainer(_ image: String, name: String, mode: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        _ = try await pullAndCreate(env.image(image), name: name, sourceLocation: sourceLocation)
        if mode != "N1" {
            try requireSuccess(try await udocker(["setup", "--execmode=\(mode)", name]), sourceLocation: sourceLocation)
        }
    }

    /// Runs a host launcher (mpirun, srun, sbatch) as the test user, under `timeout` (a rank that
    /// dies can leave mpirun waiting for ever: it ignores the first SIGTERM). Never while the
    /// two-node cluster changes the host's interfaces (`HostNetworkGate`).
    func launch(_ program: String, _ args: [String], environment: [String: String] = [:]) async throws -> CommandResult {
        try await HostNetworkGate.with {
            try await command(environment: environment, timeout: .seconds(240)).run(
                "/usr/bin/timeout", ["-k", "10", "200", program] + args)
        }
    }
}

/// The ring's output: one "ring:" line from rank 0 and the set of "rank r of n" lines.
func ringOutput(_ r: CommandResult) -> (ring: [String], ranks: Set<String>) {
    (
        r.stdoutLines.filter { $0.hasPrefix("ring: ") },
        Set(r.stdoutLines.filter { $0.hasPrefix("rank ") }.map { $0.components(separatedBy: " on ").first ?? $0 })
    )
}

/// Expects ONE n-rank job (not n singletons) and clean output (no PMIx/Open MPI error noise).
func expectRingJob(
    _ r: CommandResult, ranks n: Int, vendor: String = "Open MPI", _ what: String,
    sourceLocation: SourceLocation = #_sourceLocation
) {
    expectSuccess(r, sourceLocation: sourceLocation)
    let (ring, ranks) = ringOutput(r)
    let sum = (0..<n).reduce(0, +)
    #expect(
        ring.count == 1 && ring.first?.hasPrefix("ring: size=\(n) sum=\(sum) library=\(vendor)") == true,
        "\(what): expected one \(n)-rank job:\n\(r)", sourceLocation: sourceLocation)
    #expect(ranks == Set((0..<n).map { "rank \($0) of \(n)" }), "\(what):\n\(r)", sourceLocation: sourceLocation)
    for noise in ["PMIX ERROR", "gds", "ORTE_ERROR", "btl_vader", "WARNING"] {
        #expect(
            !r.stderr.contains(noise) && !r.stdout.contains(noise), "\(what): '\(noise)' in the output:\n\(r)",
            sourceLocation: sourceLocation)
    }
}

@Suite("E2E HPC: job environment, MPI (hybrid model)", e2eEnabled)
struct MPITests {
    // MARK: environment for jobs

    @Test(
        "job variables pass without --hostenv, others do not; /dev/shm and the session dir are the host's",
        arguments: hpcModes)
    func jobEnvironment(_ mode: String) async throws {
        let box = try sandbox("jobenv-\(mode)")
        _ = try await box.pullAndCreate(box.env.debian, name: "deb")
        if mode != "N1" { try requireSuccess(try await box.udocker(["setup", "--execmode=\(mode)", "deb"])) }
        let session = "\(box.scratch)/ompi.session"
        try box.makeUserDirectory(box.scratch)
        try box.makeUserDirectory(session)
        try box.writeUserFile("\(session)/dstore", "session-file\n")
        let shm = "/dev/shm/udocker-e2e-\(UUID().uuidString.prefix(8))"
        try requireSuccess(try await box.shell("echo shm-file > \(shm)"))
        defer { unlink(shm) }

        let job = [
            "OMPI_E2E_VAR": "o", "PMIX_SERVER_TMPDIR": session, "PMIX_RANK": "0", "SLURM_JOB_ID": "77", "PMI_E2E": "p",
            "CUDA_VISIBLE_DEVICES": "1", "NVIDIA_VISIBLE_DEVICES": "all", "NOT_A_JOB_VAR": "x",
        ]
        let script =
            "env | grep -E '^(OMPI_E2E|PMIX_SERVER|SLURM_JOB_ID|PMI_E2E|CUDA_|NVIDIA_VIS|NOT_A)' | sort; "
            + "cat \(shm) $PMIX_SERVER_TMPDIR/dstore"
        let r = try await box.run(["--nobanner", "deb", "sh", "-c", script], environment: job)
        expectSuccess(r)
        #expect(
            r.stdoutLines == [
                "CUDA_VISIBLE_DEVICES=1", "NVIDIA_VISIBLE_DEVICES=all", "OMPI_E2E_VAR=o", "PMIX_SERVER_TMPDIR=\(session)",
                "PMI_E2E=p", "SLURM_JOB_ID=77", "shm-file", "session-file",
            ], "\(mode): \(r)")

        // -e wins over the launcher's value; a configured prefix list replaces the default.
        let own = try await box.run(
            ["--nobanner", "-e", "SLURM_JOB_ID=mine", "deb", "sh", "-c", "echo $SLURM_JOB_ID:$OMPI_E2E_VAR"],
            environment: job.merging(["UDOCKER_JOB_ENV_PREFIXES": "SLURM_"]) { $1 })
        expectSuccess(own)
        #expect(own.stdout == "mine:\n", "\(mode): \(own)")

        // A task's name lookups go through the host's /etc/hosts (the image has none: ranks
        // asked DNS for `localhost`, issue 25); outside a job the image's own (none) stays.
        let hosts = try String(contentsOfFile: "/etc/hosts", encoding: .utf8)
        let inJob = try await box.run(["--nobanner", "deb", "sh", "-c", "cat /etc/hosts 2>/dev/null"], environment: job)
        #expect(inJob.stdout == hosts, "\(mode): a job task sees the host's /etc/hosts:\n\(inJob)")
        if mode != "R1" {  // the R modes bind the host's /etc/hosts for every run (RuncEngine.sysdirs)
            let outside = try await box.run(["--nobanner", "deb", "sh", "-c", "cat /etc/hosts 2>/dev/null; true"])
            #expect(outside.stdout != hosts, "\(mode): outside a job the image's /etc/hosts:\n\(outside)")
        }

        if mode == "R1" {
            // Outside a job the runtime keeps its private /dev/shm.
            let alone = try await box.run(["--nobanner", "deb", "sh", "-c", "cat \(shm) 2>/dev/null || echo private"])
            #expect(alone.stdout == "private\n", "\(alone)")
        }
    }

    @Test("showconf lists job_env_prefixes; UDOCKER_JOB_ENV_PREFIXES overrides it")
    func configurationKey() async throws {
        let box = try sandbox()
        let shown = try await box.udocker(["showconf"])
        expectSuccess(shown)
        #expect(
            shown.stdoutLines.contains { $0.contains("job_env_prefixes") && $0.contains("OMPI_ PMIX_ PMI_") && $0.contains("SLURM_") },
            "\(shown)")
        let env = try await box.udocker(["showconf"], environment: ["UDOCKER_JOB_ENV_PREFIXES": "SLURM_ FOO_"])
        #expect(env.stdoutLines.contains { $0.contains("job_env_prefixes") && $0.hasSuffix("SLURM_ FOO_") }, "\(env)")
    }

    // MARK: mpirun

    @Test("mpirun -np 4 udocker run IMG ring: one 4-rank job", hasOpenMPILauncher, arguments: pmixRankModes)
    func mpirunRing(_ mode: String) async throws {
        let box = try sandbox("mpirun-\(mode)")
        try await box.mpiContainer("mpi-openmpi", name: "mpi", mode: mode)
        let r = try await box.launch(
            "/usr/bin/mpirun", ["--oversubscribe", "-np", "4", box.env.binary, "run", "--nobanner", "mpi", "ring"])
        expectRingJob(r, ranks: 4, "\(mode) mpirun")
        // The ranks are the user (PMIx checks it).
        let id = try await box.launch("/usr/bin/mpirun", ["-np", "1", box.env.binary, "run", "--nobanner", "mpi", "id", "-u"])
        let uid = geteuid() == 0 && box.env.user != "root" ? try UserCommand.ids(of: box.env.user).uid : geteuid()
        #expect(id.stdout == "\(uid)\n", "\(id)")
    }

    @Test(
        "a rank in an image without Open MPI's site file opens only what the host's file allows (no btl/ofi: 1 s in MPI_Finalize)",
        hasOpenMPILauncher, arguments: pmixRankModes)
    func hostSiteParameters(_ mode: String) async throws {
        // The host's site file (Debian's openmpi-common) turns btl/ofi off: its close sleeps 1 s.
        let site = try String(contentsOfFile: "/etc/openmpi/openmpi-mca-params.conf", encoding: .utf8)
        let excluded =
            site.split(separator: "\n").compactMap { line -> [String]? in
                let kv = line.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                guard kv.count == 2, kv[0] == "btl", kv[1].hasPrefix("^") else { return nil }
                return kv[1].dropFirst().split(separator: ",").map(String.init)
            }.last ?? []
        try #require(excluded.contains("ofi"), "the host's Open MPI site file must exclude btl/ofi:\n\(site)")

        let box = try sandbox("mcasite-\(mode)")
        try await box.mpiContainer("mpi-openmpi", name: "mpi", mode: mode)
        let own = try await box.run([
            "--nobanner", "mpi", "sh", "-c", "test -e /etc/openmpi/openmpi-mca-params.conf && echo has-site-file; true",
        ])
        #expect(own.stdout.isEmpty, "the test image has no site file of its own (libopenmpi3 only):\n\(own)")

        // Open MPI names every BTL component it opens (btl_base_verbose, passed by mpirun).
        let verbose = ["OMPI_MCA_btl_base_verbose": "10"]
        let args = ["-np", "1", box.env.binary, "run", "--nobanner", "mpi", "ring"]
        let r = try await box.launch("/usr/bin/mpirun", args, environment: verbose)
        expectSuccess(r)
        let opened = (r.stdoutLines + r.stderrLines).filter {
            $0.contains("components_open: component ") && $0.contains("open function successful")
        }
        #expect(opened.contains { $0.contains("component vader ") }, "\(mode): no BTL listing:\n\(r)")
        for c in excluded {
            #expect(!opened.contains { $0.contains("component \(c) ") }, "\(mode): the rank opened btl/\(c):\n\(r)")
        }
        if mode == "N1" {
            // The image's own site file wins over the host's: then btl/ofi is opened again.
            try requireSuccess(
                try await box.run([
                    "--nobanner", "mpi", "sh", "-c",
                    "mkdir -p /etc/openmpi && echo 'btl_base_warn_component_unused = 0' > /etc/openmpi/openmpi-mca-params.conf",
                ]))
            let image = try await box.launch("/usr/bin/mpirun", args, environment: verbose)
            expectSuccess(image)
            #expect((image.stdout + image.stderr).contains("components_open: component ofi open function successful"), "\(image)")
        }
    }

    @Test(
        "mpirun -np 2/4 on an image built the usual way (openmpi-bin): ranks see real PIDs, no crash, no warning",
        hasOpenMPILauncher, arguments: ["N1", "R1"])
    func ringOnOpenMPIBinImage(_ mode: String) async throws {
        let box = try sandbox("ompibin-\(mode)")
        try await box.mpiContainer("mpi-openmpi-bin", name: "mpi", mode: mode)
        for n in [2, 4] {
            let r = try await box.launch(
                "/usr/bin/mpirun", ["--oversubscribe", "-np", "\(n)", box.env.binary, "run", "--nobanner", "mpi", "ring"])
            expectRingJob(r, ranks: n, "\(mode) openmpi-bin, \(n) ranks")
        }
        // Open MPI tells a peer's shared-memory segment from its own by PID: each rank must
        // see its real one (R1 made every rank PID 1 in its own namespace: vader's sendi crashed).
        let pids = try await box.launch(
            "/usr/bin/mpirun", ["--oversubscribe", "-np", "2", box.env.binary, "run", "--nobanner", "mpi", "sh", "-c", "echo $$"])
        expectSuccess(pids)
        #expect(Set(pids.stdoutLines).count == 2 && !pids.stdoutLines.contains("1"), "\(mode): \(pids)")
    }

    @Test("R1 without unshare/newuidmap refuses a rank of a PMIx job in one line naming why")
    func rankUnderR1WithoutSubordinateIDs() async throws {
        let box = try sandbox()
        try await box.mpiContainer("mpi-openmpi", name: "mpi", mode: "R1")
        // A PMIx rank (what srun --mpi=pmix and prterun set) on a PATH without util-linux's unshare.
        let rank = ["PMIX_RANK": "0", "PMIX_NAMESPACE": "e2e", "PATH": "/usr/sbin:/sbin"]
        let r = try await box.run(["--nobanner", "mpi", "ring"], environment: rank)
        expectOneLineError(r, status: 2, mentioning: ["R1 cannot run a rank of a PMIx job", "unshare not found", "N1, P1 or F3"])
        #expect(ringOutput(r).ring.isEmpty, "\(r)")
        // Outside a job the same container runs as container root, as before.
        let alone = try await box.run(["--nobanner", "mpi", "id", "-u"], environment: ["PATH": "/usr/sbin:/sbin"])
        expectSuccess(alone)
        #expect(alone.stdout == "0\n", "\(alone)")
    }

    @Test(
        "--mpi=host: the host's Open MPI replaces a broken one in the container (N1, P1, R1; F3 refuses)", hasOpenMPILauncher,
        arguments: pmixRankModes)
    func hostMPI(_ mode: String) async throws {
        let box = try sandbox("mpihost-\(mode)")
        try await box.mpiContainer("mpi-openmpi", name: "mpi", mode: mode)
        // The container's libmpi.so.40 becomes another Open MPI library (same vendor, no MPI_Init).
        let lib = "/usr/lib/x86_64-linux-gnu"
        try requireSuccess(
            try await box.run([
                "--nobanner", "mpi", "sh", "-c",
                "cp $(readlink -f \(lib)/libopen-rte.so.40) $(readlink -f \(lib)/libmpi.so.40)",
            ]))
        let args = ["--oversubscribe", "-np", "2", box.env.binary, "run", "--nobanner"]
        let broken = try await box.launch("/usr/bin/mpirun", args + ["mpi", "ring"])
        #expect(broken.status != 0 && ringOutput(broken).ring.isEmpty, "the container's own MPI is broken:\n\(broken)")
        let host = try await box.launch("/usr/bin/mpirun", args + ["--mpi=host", "mpi", "ring"])
        if mode.hasPrefix("F") {
            // Fakechroot's loader reads libraries from ROOT itself: refused, not silently the container's.
            #expect(
                host.status != 0 && host.stderrLines.contains { $0.hasPrefix("Error: --mpi=host is not supported by \(mode)") }, "\(host)")
        } else {
            expectRingJob(host, ranks: 2, "\(mode) --mpi=host")
        }
    }

    @Test("mpiexec.hydra -n 4 udocker run MPICH-IMG ring: one 4-rank job (PMI_FD kept)", hasHydraLauncher, arguments: hpcModes)
    func hydraRing(_ mode: String) async throws {
        let box = try sandbox("hydra-\(mode)")
        try await box.mpiContainer("mpi-mpich", name: "mpich", mode: mode)
        let r = try await box.launch("/usr/bin/mpiexec.hydra", ["-n", "4", box.env.binary, "run", "--nobanner", "mpich", "ring"])
        if mode == "R1" {
            // runc passes on only the standard descriptors: refused in one line per rank.
            #expect(r.status != 0 && ringOutput(r).ring.isEmpty, "\(r)")
            let errors = r.stderrLines.filter { $0.hasPrefix("Error:") }
            #expect(!errors.isEmpty && errors.allSatisfy { $0.contains("R1 cannot run a rank of this PMI job") }, "\(r)")
        } else {
            expectRingJob(r, ranks: 4, vendor: "MPICH", "\(mode) mpiexec.hydra")
        }
    }

    @Test("MPICH program under Open MPI's mpirun: one line naming both, no singletons", hasOpenMPILauncher)
    func mismatchStops() async throws {
        let box = try sandbox()
        try await box.mpiContainer("mpi-mpich", name: "mpich", mode: "N1")
        // Outside a launcher the check stays out of the way (a singleton is what the user asked for).
        let alone = try await box.run(["--nobanner", "mpich", "ring"])
        expectSuccess(alone)
        #expect(ringOutput(alone).ring.first?.hasPrefix("ring: size=1 sum=0 library=MPICH") == true, "\(alone)")

        let r = try await box.launch(
            "/usr/bin/mpirun", ["--oversubscribe", "-np", "2", box.env.binary, "run", "--nobanner", "mpich", "ring"])
        #expect(r.status != 0, "\(r)")
        #expect(ringOutput(r).ring.isEmpty, "the ranks must not run:\n\(r)")
        let errors = r.stderrLines.filter { $0.hasPrefix("Error:") }
        #expect(errors.count == 2, "one line per rank:\n\(r)")
        for e in errors {
            #expect(e.contains("MPI mismatch") && e.contains("MPICH (libmpich.so.12") && e.contains("Open MPI"), "\(e)")
        }

        // --mpi=none skips the check: then the job silently falls apart, as the issue describes.
        let forced = try await box.launch(
            "/usr/bin/mpirun",
            [
                "--oversubscribe", "-np", "2", box.env.binary, "run", "--nobanner", "--mpi=none",
                "mpich", "ring",
            ])
        #expect(ringOutput(forced).ring.filter { $0.hasPrefix("ring: size=1 ") }.count == 2, "\(forced)")

        let bad = try await box.run(["--mpi=bogus", "mpich", "ring"])
        expectOneLineError(bad, mentioning: ["--mpi"])
    }
}
