import FoundationEssentials
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

/// One `host[:cont]` volume.
struct VolumeSpec: Sendable, Equatable {
    var spec: String
    var host: String
    var container: String
    var isSysdir = false
    var readOnly = false

    /// udocker `utils/uvolume.py` + `_check_volumes`: split once on ":", both absolute,
    /// container path not "/". Beyond udocker: a trailing `:ro` (read-only) or `:rw`.
    static func parse(_ spec: String) throws -> VolumeSpec {
        guard !spec.isEmpty else { throw EngineError.invalid("invalid volume: empty specification") }
        var spec = spec, readOnly = false
        for (suffix, ro) in [(":ro", true), (":rw", false)] where spec.hasSuffix(suffix) && spec.dropLast(3).contains(":") {
            spec = String(spec.dropLast(3)); readOnly = ro
        }
        let host: String, cont: String
        if let colon = spec.firstIndex(of: ":") {
            host = String(spec[..<colon]); cont = String(spec[spec.index(after: colon)...])
        } else {
            host = spec; cont = spec
        }
        guard host.hasPrefix("/") else { throw EngineError.invalid("invalid volume, host path must be absolute: \(spec)") }
        guard cont.hasPrefix("/") else { throw EngineError.invalid("invalid volume, container path must be absolute: \(spec)") }
        if cont.contains(":") {
            throw EngineError.invalid("invalid volume: \(spec) (the only options are :ro and :rw)")
        }
        let c = PathName.normalize(cont)
        guard c != "/" else { throw EngineError.invalid("invalid volume, container path cannot be /: \(spec)") }
        return VolumeSpec(spec: spec, host: PathName.normalize(host), container: c, readOnly: readOnly)
    }
}

extension PlanBuilder {
    mutating func parseVolumes() throws -> [VolumeSpec] {
        try options.volumes.map(VolumeSpec.parse)
    }

    /// A user volume placed on `path` (e.g. /etc/passwd), if any.
    func userVolume(onto path: String) -> VolumeSpec? {
        volumes.last { $0.container == path }
    }

    /// udocker `_set_volume_bindings` + `_check_volumes`: `-v` entries, sysdirs, auth files,
    /// home; minus `--novol`; host paths must exist (sysdirs are dropped silently).
    mutating func assembleMounts() throws -> [ExecutionPlan.Mount] {
        var list = volumes
        if !options.nosysdirs {
            for d in env.sysdirs where d.hasPrefix("/") {
                let n = PathName.normalize(d)
                list.append(VolumeSpec(spec: d, host: n, container: n, isSysdir: true))
            }
        }
        list.append(contentsOf: authMounts)
        list.append(contentsOf: jobVolumes(after: list))
        if options.bindhome {
            guard let home = host.home, home.hasPrefix("/"), PathName.normalize(home) != "/" else {
                throw EngineError.invalid("--bindhome: the host home directory is unknown")
            }
            let h = PathName.normalize(home)
            list.append(VolumeSpec(spec: h, host: h, container: h))
        }
        for nv in options.noVolumes {
            let n = nv.hasPrefix("/") ? PathName.normalize(nv) : nv
            list.removeAll { $0.spec == nv || $0.host == n }
        }
        var mounts: [ExecutionPlan.Mount] = []
        for v in list {
            var st = stat()
            guard stat(v.host, &st) == 0 else {
                if v.isSysdir { continue }
                throw EngineError.invalid("invalid host volume path: \(v.host)")
            }
            mounts.append(
                .init(
                    source: v.host, target: v.container, isSysdir: v.isSysdir,
                    isDirectory: (st.st_mode & S_IFMT) == S_IFDIR, readOnly: v.readOnly))
        }
        return mounts
    }
}

/// A bind as the engines launch it: the host source, the target resolved inside ROOT, and `:ro`.
struct BindMount: Sendable, Equatable {
    var source: String
    var target: String
    var readOnly = false
}
