// Package mountinfo reads the kernel's mount table of the calling process (/proc/self/mountinfo, proc(5)) and
// detaches FUSE mounts.
//
// Only two columns of a mountinfo line are used: field 5, the mount point, and the first field after the " - "
// separator, the file system type. Paths in the table carry the kernel's octal escapes (\040 for a space, \011,
// \012, \134 for a backslash); every MountPoint returned here is already unescaped, so callers compare it with a
// cleaned path as they would write it. The table is read afresh on each call: nothing is cached, so an answer is
// only as current as the moment it was read.
package mountinfo
