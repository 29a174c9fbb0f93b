import FoundationEssentials
import UDockerSystem

extension LocalRepository {
    /// Serialises "find the container by name, else pull and create it" (`run --pull=reuse
    /// --name=n`) across processes, e.g. the tasks of `srun -n4` on one node: one creates, the
    /// others wait here and then find it. Separate from the repository lock, which pull and
    /// create take themselves (an OFD lock is not re-entrant across descriptors).
    public func namedCreationLock() throws -> FileLock {
        try FileLock(path: "\(topDirectory)/.udocker.create.lock", kind: .exclusive)
    }
}
