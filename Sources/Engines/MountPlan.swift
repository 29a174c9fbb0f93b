import UDockerSystem
/// The plan's mounts made ready for engines that bind them beneath ROOT themselves (N1, R, S1):
/// computed once from `ExecutionPlan.mounts` (volumes, sysdirs, auth files, GPU and MPI binds),
/// each engine renders the result in its own syntax.
enum MountPlan {
    /// Resolves every mount target inside ROOT (symlinks followed within ROOT only), creates the
    /// missing mountpoints there (no symlink followed), and orders parents before children.
    static func resolve(_ plan: ExecutionPlan, messages: Messages) throws -> [BindMount] {
        let root = try RootDirectory(path: plan.root)
        var result: [(source: String, target: String, depth: Int, index: Int)] = []
        for (index, m) in plan.mounts.enumerated() {
            func drop(_ why: String) throws {
                if m.isSysdir { messages.verbose("N1: not binding \(m.source): \(why)"); return }
                throw EngineError(.setupFailed, "volume \(m.source):\(m.target): \(why)")
            }
            // Beneath another volume: the mountpoint lives in that host directory.
            let enclosing =
                plan.mounts.prefix(index).contains { PathName.isUnder(m.target, $0.target) && $0.target != m.target }
                || plan.mounts.suffix(from: index + 1).contains { PathName.isUnder(m.target, $0.target) && $0.target != m.target }
            if enclosing {
                result.append((m.source, m.target, PathName.components(m.target).count, index))
                continue
            }
            let r: RootDirectory.Resolved
            do { r = try root.resolve(m.target) } catch {
                try drop("the mountpoint \(m.target) cannot be resolved in the container"); continue
            }
            if r.path != m.target,
                plan.mounts.contains(where: { $0.target != m.target && PathName.isUnder(r.path, $0.target) })
            {
                try drop("the mountpoint \(m.target) is a symlink into another volume (\(r.path))"); continue
            }
            if r.path == "/" { try drop("the mountpoint \(m.target) resolves to /"); continue }
            if !r.exists {
                do { try root.makeMountpoint(r.path, directory: m.isDirectory) } catch {
                    try drop("cannot create the mountpoint \(r.path) in the container: \(error)"); continue
                }
            } else if r.isDirectory != m.isDirectory {
                try drop(
                    m.isDirectory
                        ? "\(m.target) is not a directory in the container"
                        : "\(m.target) is a directory in the container");
                continue
            }
            result.append((m.source, r.path, PathName.components(r.path).count, index))
        }
        result.sort { ($0.depth, $0.index) < ($1.depth, $1.index) }
        return result.map { BindMount(source: $0.source, target: $0.target, readOnly: plan.mounts[$0.index].readOnly) }
    }
}
