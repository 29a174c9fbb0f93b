import UDockerSystem
import OCI
import Store
@testable import Registry

extension RegistryClient {
    /// The tests pull into a plain directory through the store's ingest (the real sink a pull uses).
    func fetchBlobs(
        _ ref: ImageReference, _ blobs: [Descriptor], into directory: String,
        progress: (@Sendable (ProgressEvent) -> Void)?
    ) async throws {
        try await fetchBlobs(ref, blobs, into: BlobIngest(directory: directory), progress: progress)
    }
}
