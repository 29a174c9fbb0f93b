import Engines
import Store

extension CommandContext {
    /// Runs `body` with the tree of a container's files when it is not its ROOT: nil for a flat
    /// container (ROOT is the tree), the merged overlayfs view for an overlay container (mounted in
    /// a helper's user namespace for the duration of `body`).
    func withMergedRoot<T>(of id: String, _ body: (String?) throws -> T) throws -> T {
        guard repository.isOverlayContainer(id) else { return try body(nil) }
        let view: OverlayView
        do { view = try OverlayView.open(repository.overlayLayout(id), root: repository.containerRoot(id)) } catch {
            throw CommandFailure("cannot mount the overlay container \(id) to read its files: \(error)", cause: error)
        }
        defer { view.close() }
        return try body(view.path)
    }
}
