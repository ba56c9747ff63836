package s3fake

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/s3ftp/s3ftp/s3client"
)

// Fake is an in-memory bucket implementing s3client.Client. The zero value is not usable; call New.
type Fake struct {
	bytesUp     atomic.Int64
	bytesDown   atomic.Int64
	bytesCopied atomic.Int64

	mu sync.Mutex
	// guarded by mu:
	objects     map[string]*object
	uploads     map[string]*upload // by upload ID
	calls       map[string]int
	failQueue   map[string][]error
	bodyFaults  []bodyFault
	fault       func(op, key string, call int) error
	latency     time.Duration
	clock       func() time.Time
	minPartSize int64
	created     map[string]int // objects stored per key (PUT, copy, completion), for Created
}

type object struct {
	data         []byte
	etag         string
	lastModified time.Time
	contentType  string
	metadata     map[string]string
	tags         map[string]string
}

type upload struct {
	key       string
	initiated time.Time
	opts      s3client.PutOptions
	parts     map[int32]part
}

type part struct {
	data []byte
	etag string
}

type bodyFault struct {
	after int64
	err   *s3client.Error
}

var _ s3client.Client = (*Fake)(nil)

// New returns an empty fake bucket.
func New() *Fake {
	return &Fake{
		objects:     map[string]*object{},
		uploads:     map[string]*upload{},
		calls:       map[string]int{},
		failQueue:   map[string][]error{},
		clock:       func() time.Time { return time.Now().UTC().Truncate(time.Second) },
		minPartSize: s3client.MinPartSize,
		created:     map[string]int{},
	}
}

// --- configuration and inspection (not counted as calls) ---

// SetFault installs a hook consulted by every call after its count is taken: op is the method name, key the
// object key ("" for bucket calls; the source key for CopyObject), call the 1-based count of op so far. A
// non-nil result fails the call (see FailNext for how errors are wrapped). nil removes the hook.
func (f *Fake) SetFault(fn func(op, key string, call int) error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fault = fn
}

// FailNext makes the next n calls of op fail with err. err may be a kind (s3client.ErrUnavailable), which is
// wrapped into an *s3client.Error with that kind and a matching status; an *s3client.Error, returned with Op
// and Key filled in; or any other error, wrapped with kind s3client.KindOf(err).
func (f *Fake) FailNext(op string, n int, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for range n {
		f.failQueue[op] = append(f.failQueue[op], err)
	}
}

// FailNextBody makes the bodies of the next n successful GetObject calls fail after delivering after bytes.
// The read error is an *s3client.Error of kind ErrUnavailable wrapping err (io.ErrUnexpectedEOF when nil), as
// a connection dropped mid-stream looks through the SDK adapter. An err that is a kind (s3client.ErrOther) or
// an *s3client.Error is used as FailNext uses it, so a body can also fail with another kind.
func (f *Fake) FailNextBody(n int, after int64, err error) {
	if err == nil {
		err = io.ErrUnexpectedEOF
	}
	e := &s3client.Error{Op: "GetObject", Kind: s3client.ErrUnavailable, Err: err}
	var se *s3client.Error
	if s3client.KindOf(err) == err || errors.As(err, &se) {
		e = wrapFault("GetObject", "", err).(*s3client.Error)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for range n {
		f.bodyFaults = append(f.bodyFaults, bodyFault{after: after, err: e})
	}
}

// SetLatency makes every call wait d (or until its context is done) before doing anything else.
func (f *Fake) SetLatency(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.latency = d
}

// SetClock replaces the clock that stamps LastModified and Initiated.
func (f *Fake) SetClock(now func() time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.clock = now
}

// SetMinPartSize changes the smallest size allowed for any part but the last (default s3client.MinPartSize),
// so that unit tests can exercise multipart logic with small parts.
func (f *Fake) SetMinPartSize(n int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.minPartSize = n
}

// Calls returns how many times the method op was called, failed calls included.
func (f *Fake) Calls(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

// TotalCalls returns the number of calls of all methods.
func (f *Fake) TotalCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		n += c
	}
	return n
}

// ResetCounters zeroes the call counts and byte counters; objects, uploads and faults are kept.
func (f *Fake) ResetCounters() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = map[string]int{}
	f.bytesUp.Store(0)
	f.bytesDown.Store(0)
	f.bytesCopied.Store(0)
	f.created = map[string]int{}
}

// Created returns how many objects calls stored under key since New or ResetCounters: each PutObject,
// CopyObject to key and CompleteMultipartUpload that succeeded counts one, as S3 sends one object-created event
// for each. Put and PutWith do not count.
func (f *Fake) Created(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.created[key]
}

// BytesCopied returns the source bytes of successful CopyObject and UploadPartCopy calls: the server-side
// copy work that calls caused.
func (f *Fake) BytesCopied() int64 { return f.bytesCopied.Load() }

// BytesUploaded returns the body bytes received by PutObject and UploadPart, failed calls excluded.
func (f *Fake) BytesUploaded() int64 { return f.bytesUp.Load() }

// BytesDownloaded returns the bytes read from GetObject bodies.
func (f *Fake) BytesDownloaded() int64 { return f.bytesDown.Load() }

// Put stores data under key with no metadata, as if uploaded earlier. It is not counted as a call.
func (f *Fake) Put(key string, data []byte) {
	f.PutWith(key, data, s3client.PutOptions{})
}

// PutWith stores data under key with opts' content type and metadata. It is not counted as a call.
func (f *Fake) PutWith(key string, data []byte, opts s3client.PutOptions) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.storeLocked(key, bytes.Clone(data), etagOf(data), opts)
}

// Object returns a copy of key's content.
func (f *Fake) Object(key string) ([]byte, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	o, ok := f.objects[key]
	if !ok {
		return nil, false
	}
	return bytes.Clone(o.data), true
}

// Info returns key's metadata as HeadObject would, without counting a call.
func (f *Fake) Info(key string) (s3client.ObjectInfo, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	o, ok := f.objects[key]
	if !ok {
		return s3client.ObjectInfo{}, false
	}
	return o.info(key), true
}

// Remove deletes key without counting a call.
func (f *Fake) Remove(key string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.objects, key)
}

// Keys returns the object keys in sorted order.
func (f *Fake) Keys() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Sorted(maps.Keys(f.objects))
}

// Uploads returns the unfinished multipart uploads sorted by key, then initiation time.
func (f *Fake) Uploads() []s3client.Upload {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.uploadsLocked("")
}

// String describes the bucket in sorted order, one line per object ("key size etag") and per unfinished
// upload ("upload key parts=[1 2]"), for comparing state in tests.
func (f *Fake) String() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(f.objects)) {
		o := f.objects[k]
		fmt.Fprintf(&b, "%s %d %s\n", k, len(o.data), o.etag)
	}
	for _, u := range f.uploadsLocked("") {
		nums := slices.Sorted(maps.Keys(f.uploads[u.UploadID].parts))
		fmt.Fprintf(&b, "upload %s parts=%v\n", u.Key, nums)
	}
	return b.String()
}

// --- s3client.Client ---

// HeadBucket always succeeds (unless a fault is injected).
func (f *Fake) HeadBucket(ctx context.Context) error {
	return f.begin(ctx, "HeadBucket", "")
}

// HeadObject returns key's metadata.
func (f *Fake) HeadObject(ctx context.Context, key string) (s3client.ObjectInfo, error) {
	const op = "HeadObject"
	if err := f.begin(ctx, op, key); err != nil {
		return s3client.ObjectInfo{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	o, ok := f.objects[key]
	if !ok {
		// HEAD responses carry no error code.
		return s3client.ObjectInfo{}, newErr(op, key, s3client.ErrNotFound, http.StatusNotFound, "")
	}
	return o.info(key), nil
}

// GetObject returns a body over the requested range. Ranges follow S3: off == 0 with length < 0 reads the
// whole object (even an empty one); otherwise off must be below the size or the error is ErrInvalidRange, and
// a range reaching past the end is clipped. length == 0 gives an empty body.
func (f *Fake) GetObject(ctx context.Context, key string, off, length int64, ifMatch string) (io.ReadCloser, s3client.ObjectInfo, error) {
	const op = "GetObject"
	if err := f.begin(ctx, op, key); err != nil {
		return nil, s3client.ObjectInfo{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	o, ok := f.objects[key]
	if !ok {
		return nil, s3client.ObjectInfo{}, newErr(op, key, s3client.ErrNotFound, http.StatusNotFound, "NoSuchKey")
	}
	if ifMatch != "" && unquote(ifMatch) != unquote(o.etag) {
		return nil, s3client.ObjectInfo{}, newErr(op, key, s3client.ErrPrecondition, http.StatusPreconditionFailed, "PreconditionFailed")
	}
	size := int64(len(o.data))
	whole := off == 0 && length < 0
	if off < 0 || (!whole && length != 0 && off >= size) || off > size {
		return nil, s3client.ObjectInfo{}, newErr(op, key, s3client.ErrInvalidRange, http.StatusRequestedRangeNotSatisfiable, "InvalidRange")
	}
	end := size
	if length >= 0 && off+length < size {
		end = off + length
	}
	b := &body{ctx: ctx, fake: f, key: key, data: o.data[off:end], limit: -1}
	if len(f.bodyFaults) > 0 {
		bf := f.bodyFaults[0]
		f.bodyFaults = f.bodyFaults[1:]
		b.limit, b.limitErr = bf.after, bf.err
	}
	return b, o.info(key), nil
}

// PutObject stores body under key.
func (f *Fake) PutObject(ctx context.Context, key string, body []byte, opts s3client.PutOptions) (string, error) {
	if err := f.begin(ctx, "PutObject", key); err != nil {
		return "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, exists := f.objects[key]; exists && opts.IfNoneMatch {
		return "", newErr("PutObject", key, s3client.ErrPrecondition, http.StatusPreconditionFailed, "PreconditionFailed")
	}
	f.bytesUp.Add(int64(len(body)))
	etag := etagOf(body)
	f.storeLocked(key, bytes.Clone(body), etag, opts)
	f.created[key]++
	return etag, nil
}

// PutObjectTagging replaces key's tags (S3's limits: at most 10, keys up to 128 and values up to 256 bytes).
func (f *Fake) PutObjectTagging(ctx context.Context, key string, tags map[string]string) error {
	const op = "PutObjectTagging"
	if err := f.begin(ctx, op, key); err != nil {
		return err
	}
	if len(tags) > 10 {
		return newErr(op, key, s3client.ErrOther, http.StatusBadRequest, "BadRequest")
	}
	for k, v := range tags {
		if len(k) > 128 || len(v) > 256 {
			return newErr(op, key, s3client.ErrOther, http.StatusBadRequest, "InvalidTag")
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	o, ok := f.objects[key]
	if !ok {
		return newErr(op, key, s3client.ErrNotFound, http.StatusNotFound, "NoSuchKey")
	}
	o.tags = maps.Clone(tags)
	return nil
}

// GetObjectTagging returns key's tags.
func (f *Fake) GetObjectTagging(ctx context.Context, key string) (map[string]string, error) {
	const op = "GetObjectTagging"
	if err := f.begin(ctx, op, key); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	o, ok := f.objects[key]
	if !ok {
		return nil, newErr(op, key, s3client.ErrNotFound, http.StatusNotFound, "NoSuchKey")
	}
	tags := maps.Clone(o.tags)
	if tags == nil {
		tags = map[string]string{}
	}
	return tags, nil
}

// CopyObject copies src to dst; the copy's ETag is the MD5 of its content.
func (f *Fake) CopyObject(ctx context.Context, src, dst string, opts s3client.PutOptions) (string, error) {
	const op = "CopyObject"
	if err := f.begin(ctx, op, src); err != nil {
		return "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	o, ok := f.objects[src]
	if !ok {
		return "", newErr(op, src, s3client.ErrNotFound, http.StatusNotFound, "NoSuchKey")
	}
	if len(o.data) > s3client.MaxCopySize {
		return "", newErr(op, src, s3client.ErrTooLarge, http.StatusBadRequest, "InvalidRequest")
	}
	if !opts.ReplaceMetadata {
		opts = s3client.PutOptions{ContentType: o.contentType, Metadata: o.metadata}
	}
	opts.Tags = o.tags // S3 copies the tags whatever the metadata directive
	etag := etagOf(o.data)
	f.storeLocked(dst, o.data, etag, opts)
	f.created[dst]++
	f.bytesCopied.Add(int64(len(o.data)))
	return etag, nil
}

// DeleteObject removes key; a missing key is not an error.
func (f *Fake) DeleteObject(ctx context.Context, key string) error {
	if err := f.begin(ctx, "DeleteObject", key); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.objects, key)
	return nil
}

// List returns one page in key order. maxKeys <= 0 or above 1000 means 1000, as in S3. Objects and common
// prefixes both count towards maxKeys. The token is opaque.
func (f *Fake) List(ctx context.Context, prefix, delimiter, token string, maxKeys int32) (s3client.ListPage, error) {
	const op = "List"
	if err := f.begin(ctx, op, prefix); err != nil {
		return s3client.ListPage{}, err
	}
	after, afterPrefix, err := decodeToken(token)
	if err != nil {
		return s3client.ListPage{}, newErr(op, prefix, s3client.ErrOther, http.StatusBadRequest, "InvalidArgument")
	}
	if maxKeys <= 0 || maxKeys > 1000 {
		maxKeys = 1000
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var page s3client.ListPage
	n := int32(0)
	last, lastIsPrefix := "", false // the last entry on the page
	for _, k := range slices.Sorted(maps.Keys(f.objects)) {
		if !strings.HasPrefix(k, prefix) || k <= after || (afterPrefix && strings.HasPrefix(k, after)) {
			continue
		}
		cp := ""
		if delimiter != "" {
			if i := strings.Index(k[len(prefix):], delimiter); i >= 0 {
				cp = k[:len(prefix)+i+len(delimiter)]
			}
		}
		if cp != "" && lastIsPrefix && cp == last {
			continue
		}
		if n == maxKeys {
			page.NextToken = encodeToken(last, lastIsPrefix)
			break
		}
		n++
		if cp != "" {
			page.CommonPrefixes = append(page.CommonPrefixes, cp)
			last, lastIsPrefix = cp, true
			continue
		}
		last, lastIsPrefix = k, false
		info := f.objects[k].info(k)
		info.Metadata = nil // listings carry no metadata
		info.ContentType = ""
		page.Objects = append(page.Objects, info)
	}
	return page, nil
}

// CreateMultipartUpload starts an upload for key.
func (f *Fake) CreateMultipartUpload(ctx context.Context, key string, opts s3client.PutOptions) (string, error) {
	if err := f.begin(ctx, "CreateMultipartUpload", key); err != nil {
		return "", err
	}
	var id [16]byte
	_, _ = rand.Read(id[:])
	uid := hex.EncodeToString(id[:])
	f.mu.Lock()
	defer f.mu.Unlock()
	opts.Metadata = maps.Clone(opts.Metadata)
	f.uploads[uid] = &upload{key: key, initiated: f.clock(), opts: opts, parts: map[int32]part{}}
	return uid, nil
}

// UploadPart stores part number of the upload, replacing an earlier part with that number.
func (f *Fake) UploadPart(ctx context.Context, key, uploadID string, number int32, body []byte) (string, error) {
	const op = "UploadPart"
	if err := f.begin(ctx, op, key); err != nil {
		return "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	u, err := f.partUploadLocked(op, key, uploadID, number)
	if err != nil {
		return "", err
	}
	if len(body) > s3client.MaxPartSize {
		return "", newErr(op, key, s3client.ErrTooLarge, http.StatusBadRequest, "EntityTooLarge")
	}
	f.bytesUp.Add(int64(len(body)))
	etag := etagOf(body)
	u.parts[number] = part{data: bytes.Clone(body), etag: etag}
	return etag, nil
}

// UploadPartCopy fills part number with bytes [off, off+length) of src.
func (f *Fake) UploadPartCopy(ctx context.Context, key, uploadID string, number int32, src, srcETag string, off, length int64) (string, error) {
	const op = "UploadPartCopy"
	if err := f.begin(ctx, op, key); err != nil {
		return "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	u, err := f.partUploadLocked(op, key, uploadID, number)
	if err != nil {
		return "", err
	}
	o, ok := f.objects[src]
	if !ok {
		return "", newErr(op, src, s3client.ErrNotFound, http.StatusNotFound, "NoSuchKey")
	}
	if srcETag != "" && unquote(srcETag) != unquote(o.etag) {
		return "", newErr(op, src, s3client.ErrPrecondition, http.StatusPreconditionFailed, "PreconditionFailed")
	}
	if off < 0 || length <= 0 || off+length > int64(len(o.data)) {
		return "", newErr(op, src, s3client.ErrInvalidRange, http.StatusRequestedRangeNotSatisfiable, "InvalidRange")
	}
	if length > s3client.MaxPartSize {
		return "", newErr(op, src, s3client.ErrTooLarge, http.StatusBadRequest, "EntityTooLarge")
	}
	data := o.data[off : off+length] // immutable, shared
	f.bytesCopied.Add(length)
	etag := etagOf(data)
	u.parts[number] = part{data: data, etag: etag}
	return etag, nil
}

// CompleteMultipartUpload assembles the listed parts (in number order) into the object.
func (f *Fake) CompleteMultipartUpload(ctx context.Context, key, uploadID string, parts []s3client.Part, ifNoneMatch bool) (string, error) {
	const op = "CompleteMultipartUpload"
	if err := f.begin(ctx, op, key); err != nil {
		return "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	u, err := f.uploadLocked(op, key, uploadID)
	if err != nil {
		return "", err
	}
	if len(parts) == 0 {
		return "", newErr(op, key, s3client.ErrOther, http.StatusBadRequest, "MalformedXML")
	}
	if _, exists := f.objects[key]; exists && ifNoneMatch {
		return "", newErr(op, key, s3client.ErrPrecondition, http.StatusPreconditionFailed, "PreconditionFailed")
	}
	parts = slices.Clone(parts)
	sort.Slice(parts, func(i, j int) bool { return parts[i].Number < parts[j].Number })
	var data []byte
	sums := make([]byte, 0, len(parts)*md5.Size)
	for i, p := range parts {
		if i > 0 && parts[i-1].Number == p.Number {
			return "", newErr(op, key, s3client.ErrTooLarge, http.StatusBadRequest, "InvalidPartOrder")
		}
		got, ok := u.parts[p.Number]
		if !ok || unquote(got.etag) != unquote(p.ETag) {
			return "", newErr(op, key, s3client.ErrTooLarge, http.StatusBadRequest, "InvalidPart")
		}
		if i < len(parts)-1 && int64(len(got.data)) < f.minPartSize {
			return "", newErr(op, key, s3client.ErrTooLarge, http.StatusBadRequest, "EntityTooSmall")
		}
		data = append(data, got.data...)
		sum := md5.Sum(got.data)
		sums = append(sums, sum[:]...)
	}
	total := md5.Sum(sums)
	etag := fmt.Sprintf("%q", hex.EncodeToString(total[:])+fmt.Sprintf("-%d", len(parts)))
	f.storeLocked(key, data, etag, u.opts)
	f.created[key]++
	delete(f.uploads, uploadID)
	return etag, nil
}

// AbortMultipartUpload discards the upload.
func (f *Fake) AbortMultipartUpload(ctx context.Context, key, uploadID string) error {
	const op = "AbortMultipartUpload"
	if err := f.begin(ctx, op, key); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.uploadLocked(op, key, uploadID); err != nil {
		return err
	}
	delete(f.uploads, uploadID)
	return nil
}

// ListMultipartUploads lists the unfinished uploads whose key starts with prefix.
func (f *Fake) ListMultipartUploads(ctx context.Context, prefix string) ([]s3client.Upload, error) {
	if err := f.begin(ctx, "ListMultipartUploads", prefix); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.uploadsLocked(prefix), nil
}

// --- internals ---

// begin counts the call, checks ctx, waits the latency and returns an injected fault, if any.
func (f *Fake) begin(ctx context.Context, op, key string) error {
	f.mu.Lock()
	f.calls[op]++
	call := f.calls[op]
	latency := f.latency
	f.mu.Unlock()

	if err := ctx.Err(); err != nil {
		return canceled(op, key, err)
	}
	if latency > 0 {
		t := time.NewTimer(latency)
		select {
		case <-ctx.Done():
			t.Stop()
			return canceled(op, key, ctx.Err())
		case <-t.C:
		}
	}

	f.mu.Lock()
	hook := f.fault
	f.mu.Unlock()
	// The hook runs unlocked so that it may inspect or change the fake.
	if hook != nil {
		if err := hook(op, key, call); err != nil {
			return wrapFault(op, key, err)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if q := f.failQueue[op]; len(q) > 0 {
		f.failQueue[op] = q[1:]
		return wrapFault(op, key, q[0])
	}
	return nil
}

func (f *Fake) storeLocked(key string, data []byte, etag string, opts s3client.PutOptions) {
	f.objects[key] = &object{
		data:         data,
		etag:         etag,
		lastModified: f.clock(),
		contentType:  opts.ContentType,
		metadata:     lowerKeys(opts.Metadata),
		tags:         maps.Clone(opts.Tags),
	}
}

func (f *Fake) uploadLocked(op, key, uploadID string) (*upload, error) {
	u, ok := f.uploads[uploadID]
	if !ok || u.key != key {
		return nil, newErr(op, key, s3client.ErrNoSuchUpload, http.StatusNotFound, "NoSuchUpload")
	}
	return u, nil
}

// partUploadLocked is uploadLocked for an operation on part number, which must be a valid part number.
func (f *Fake) partUploadLocked(op, key, uploadID string, number int32) (*upload, error) {
	u, err := f.uploadLocked(op, key, uploadID)
	if err != nil {
		return nil, err
	}
	if number < 1 || number > s3client.MaxParts {
		return nil, newErr(op, key, s3client.ErrOther, http.StatusBadRequest, "InvalidArgument")
	}
	return u, nil
}

func (f *Fake) uploadsLocked(prefix string) []s3client.Upload {
	var out []s3client.Upload
	for id, u := range f.uploads {
		if strings.HasPrefix(u.key, prefix) {
			out = append(out, s3client.Upload{Key: u.key, UploadID: id, Initiated: u.initiated})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Key != out[j].Key {
			return out[i].Key < out[j].Key
		}
		if !out[i].Initiated.Equal(out[j].Initiated) {
			return out[i].Initiated.Before(out[j].Initiated)
		}
		return out[i].UploadID < out[j].UploadID
	})
	return out
}

func (o *object) info(key string) s3client.ObjectInfo {
	return s3client.ObjectInfo{
		Key:          key,
		Size:         int64(len(o.data)),
		ETag:         o.etag,
		LastModified: o.lastModified,
		ContentType:  o.contentType,
		Metadata:     maps.Clone(o.metadata),
	}
}

// body is a GetObject body. It fails with ErrCanceled once the GetObject context is done, and with the
// injected error after limit bytes when limit >= 0.
type body struct {
	ctx      context.Context
	fake     *Fake
	key      string
	data     []byte
	pos      int64
	limit    int64
	limitErr *s3client.Error
	closed   atomic.Bool
}

func (b *body) Read(p []byte) (int, error) {
	if b.closed.Load() {
		return 0, errors.New("s3fake: read on closed body")
	}
	if err := b.ctx.Err(); err != nil {
		return 0, canceled("GetObject", b.key, err)
	}
	if b.limit >= 0 && b.pos >= b.limit && b.pos < int64(len(b.data)) {
		e := *b.limitErr
		if e.Key == "" {
			e.Key = b.key
		}
		return 0, &e
	}
	if b.pos >= int64(len(b.data)) {
		return 0, io.EOF
	}
	rest := b.data[b.pos:]
	if b.limit >= 0 && b.limit-b.pos < int64(len(rest)) {
		rest = rest[:b.limit-b.pos]
	}
	n := copy(p, rest)
	b.pos += int64(n)
	b.fake.bytesDown.Add(int64(n))
	return n, nil
}

func (b *body) Close() error {
	b.closed.Store(true)
	return nil
}

func etagOf(data []byte) string {
	sum := md5.Sum(data)
	return `"` + hex.EncodeToString(sum[:]) + `"`
}

func unquote(etag string) string { return strings.Trim(etag, `"`) }

func lowerKeys(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[strings.ToLower(k)] = v
	}
	return out
}

func encodeToken(after string, isPrefix bool) string {
	tag := "k"
	if isPrefix {
		tag = "p"
	}
	return base64.RawURLEncoding.EncodeToString([]byte(tag + after))
}

func decodeToken(tok string) (after string, isPrefix bool, err error) {
	if tok == "" {
		return "", false, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(raw) == 0 || (raw[0] != 'k' && raw[0] != 'p') {
		return "", false, fmt.Errorf("s3fake: bad continuation token %q", tok)
	}
	return string(raw[1:]), raw[0] == 'p', nil
}

func newErr(op, key string, kind error, status int, code string) error {
	return &s3client.Error{Op: op, Key: key, Kind: kind, Status: status, Code: code}
}

func canceled(op, key string, cause error) error {
	return &s3client.Error{Op: op, Key: key, Kind: s3client.ErrCanceled, Err: cause}
}

// statusOf is the HTTP status a real service would answer with for an injected kind.
var statusOf = map[error]int{
	s3client.ErrNotFound:     http.StatusNotFound,
	s3client.ErrAccessDenied: http.StatusForbidden,
	s3client.ErrPrecondition: http.StatusPreconditionFailed,
	s3client.ErrInvalidRange: http.StatusRequestedRangeNotSatisfiable,
	s3client.ErrNoSuchUpload: http.StatusNotFound,
	s3client.ErrTooLarge:     http.StatusBadRequest,
	s3client.ErrUnavailable:  http.StatusServiceUnavailable,
	s3client.ErrOther:        http.StatusBadRequest,
}

func wrapFault(op, key string, err error) error {
	var se *s3client.Error
	if errors.As(err, &se) {
		c := *se
		if c.Op == "" {
			c.Op = op
		}
		if c.Key == "" {
			c.Key = key
		}
		return &c
	}
	kind := s3client.KindOf(err)
	if kind == err {
		return &s3client.Error{Op: op, Key: key, Kind: kind, Status: statusOf[kind], Code: "Injected"}
	}
	return &s3client.Error{Op: op, Key: key, Kind: kind, Err: err}
}
