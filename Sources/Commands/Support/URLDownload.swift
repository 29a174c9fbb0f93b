import FoundationEssentials
import Registry
import Store
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

/// `import URL`: fetches the tarball into a dot-file of the repository's layers directory first
/// (same filesystem, removed by the caller; a leftover is cleaned by `rmi --prune`).
enum URLDownload {
    /// "cannot download URL: reason", keeping the reason's error for the caller
    /// (`DownloadFailure.mayPass`).
    struct Failure: Error, CustomStringConvertible {
        let url: String
        let cause: Error
        var description: String { "cannot download \(url): \(cause)" }
    }

    static func fetch(_ url: String, context: CommandContext) async throws -> String {
        let path = context.repository.blobStore.scratchPath()
        context.messages.info("downloading: \(url)")
        do {
            try await ImagePuller(context: context).withRegistryClient { client, _ in try await client.download(url: url, to: path) }
        } catch {
            unlink(path)
            throw Failure(url: url, cause: error)
        }
        return path
    }
}
