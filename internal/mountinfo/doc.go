// Package mountinfo reads the kernel's mount table of the calling process (/proc/self/mountinfo, proc(5)) and
// detaches FUSE mounts.
//
// Four columns of a mountinfo line are used: field 1, the mount ID; field 3, the device number; field 5, the
// mount point; and the first field after the " - " separator, the file system type. A mount ID names one mount
// only while it exists: the kernel hands the ID of an unmounted file system to a later mount, and likewise the
// device number of a FUSE file system, so neither alone tells an old mount from a new one on the same
// directory. Entries are in the kernel's order, parents first and a file system mounted over another after it. Paths in the table carry the kernel's octal escapes (\040 for a space, \011,
// \012, \134 for a backslash); every MountPoint returned here is already unescaped, so callers compare it with a
// cleaned path as they would write it. The table is read afresh on each call: nothing is cached, so an answer is
// only as current as the moment it was read.
package mountinfo
