package s3mount

import "github.com/hanwen/go-fuse/v2/fs"

// The go-fuse interfaces each type implements.
var (
	_ fs.InodeEmbedder     = (*dirNode)(nil)
	_ fs.NodeLookuper      = (*dirNode)(nil)
	_ fs.NodeGetattrer     = (*dirNode)(nil)
	_ fs.NodeSetattrer     = (*dirNode)(nil)
	_ fs.NodeReaddirer     = (*dirNode)(nil)
	_ fs.NodeMkdirer       = (*dirNode)(nil)
	_ fs.NodeRmdirer       = (*dirNode)(nil)
	_ fs.NodeCreater       = (*dirNode)(nil)
	_ fs.NodeUnlinker      = (*dirNode)(nil)
	_ fs.NodeRenamer       = (*dirNode)(nil)
	_ fs.NodeStatfser      = (*dirNode)(nil)
	_ fs.NodeGetxattrer    = (*dirNode)(nil)
	_ fs.NodeSetxattrer    = (*dirNode)(nil)
	_ fs.NodeListxattrer   = (*dirNode)(nil)
	_ fs.NodeRemovexattrer = (*dirNode)(nil)
	_ fs.InodeEmbedder     = (*fileNode)(nil)
	_ fs.NodeGetattrer     = (*fileNode)(nil)
	_ fs.NodeSetattrer     = (*fileNode)(nil)
	_ fs.NodeOpener        = (*fileNode)(nil)
	_ fs.NodeGetxattrer    = (*fileNode)(nil)
	_ fs.NodeSetxattrer    = (*fileNode)(nil)
	_ fs.NodeListxattrer   = (*fileNode)(nil)
	_ fs.NodeRemovexattrer = (*fileNode)(nil)
	_ fs.FileReader        = (*readHandle)(nil)
	_ fs.FileReleaser      = (*readHandle)(nil)
	_ fs.FileReader        = (*writeHandle)(nil)
	_ fs.FileWriter        = (*writeHandle)(nil)
	_ fs.FileFlusher       = (*writeHandle)(nil)
	_ fs.FileFsyncer       = (*writeHandle)(nil)
	_ fs.FileReleaser      = (*writeHandle)(nil)
)

// Deliberately not implemented (go-fuse's default answer in parentheses):
//
//   - NodeLinker, NodeMknoder (ENOTSUP): S3 has no hard links, and device nodes and FIFOs are refused with a
//     clear error rather than stored as objects that only pretend to be them (TestFakeLinksAndSpecialFiles). Symbolic
//     links are objects in s3fs's format (symlink.go); ftpfront's jail never follows one out of a home.
//   - NodeAllocater, NodeCopyFileRanger, NodeLseeker (ENOTSUP / kernel default): no sparse files or in-place
//     changes; copy_file_range falls back to read+write in the kernel.
//   - NodeGetlker, NodeSetlker, NodeSetlkwer: locks stay local to the kernel (EnableLocks is off); S3 has none.
//   - NodeTmpfiler (EOPNOTSUPP): a nameless file has no key.
//   - NodeAccesser: go-fuse's default checks access(2) against the mode bits Getattr reports.
//   - NodeOpendirer, NodeOpendirHandler: listing happens in Readdir; nothing to prepare or cache per handle.
//   - FileSetattrer, FileGetattrer: the node methods handle both cases (the handle is passed to them).
