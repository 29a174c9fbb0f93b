/// The `run` options that reach the engines (udocker `cli.py` `_get_run_options`).
public struct RunOptions: Sendable, Equatable {
    /// `-u`/`--user`: `name`, `uid` or `uid:gid`.
    public var user: String?
    /// `-e K=V` or a bare `-e K` (copies the host value).
    public var env: [String] = []
    /// `--env-file=<f>`: `K=V` lines, added only for keys not set otherwise.
    public var envFiles: [String] = []
    /// `-v host[:cont]`.
    public var volumes: [String] = []
    /// `--novol=<path>`: drops a volume whose spec or host part matches.
    public var noVolumes: [String] = []
    /// `-w`/`--workdir`.
    public var workdir: String?
    /// `--entrypoint`: nil = not given, "" = drop the image entrypoint.
    public var entrypoint: String?
    /// The command and its arguments after the container name.
    public var command: [String] = []
    public var hostauth = false
    public var containerauth = false
    public var bindhome = false
    public var nosysdirs = false
    public var nometa = false
    public var hostenv = false
    /// `--kernel`: P modes only, proot `-k`.
    public var kernel: String?
    /// `--cpuset-cpus=1,2-3`.
    public var cpusetCpus: String?
    public var noBanner = false
    /// `--device=/dev/x`: host devices added to the runtime spec (R modes; others see the host /dev).
    public var devices: [String] = []
    /// `--nvidia`: provide the host NVIDIA driver (libraries, programs, devices) for this run.
    public var nvidia = false
    /// `--gpus=all|none|LIST`: which GPUs (implies `--nvidia`).
    public var gpus: String?

    /// `--mpi=none` skips the MPI compatibility check (nil: check when an MPI launcher started us).
    public var mpi: String?

    /// `--join=yes|no`: the ranks of a job step on a node in one container instance (N1; nil:
    /// automatic when the node runs more than one task of the step, see `JobJoin`).
    public var join: Bool?

    public init() {}
}
