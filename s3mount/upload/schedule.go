package upload

import "github.com/s3ftp/s3ftp/s3client"

// partsPerStep is how many consecutive parts share one size before the schedule doubles it.
const partsPerStep = 900

// PartSize returns the size of part number (1-based) of an upload whose first parts are base bytes and whose parts
// may hold at most limit bytes (the writer passes Budget.Max()/2).
//
// The size doubles every 900 parts: base << ((number-1)/900), then it is capped at min(limit, 5 GiB) and never
// goes below 5 MiB. With base = 5 MiB and no budget cap, 10,000 parts hold more than 5 TiB (MaxObjectSize).
// Arguments out of range are clamped: base and limit to [5 MiB, 5 GiB], number to [1, 10000].
func PartSize(number int, base, limit int64) int64 {
	base = clamp(base, s3client.MinPartSize, s3client.MaxPartSize)
	limit = clamp(limit, s3client.MinPartSize, s3client.MaxPartSize)
	number = int(clamp(int64(number), 1, s3client.MaxParts))
	step := (number - 1) / partsPerStep
	size := base
	for i := 0; i < step && size < limit; i++ {
		size *= 2
	}
	return min(size, limit)
}

// MaxObjectSize returns the largest object a writer can upload with first parts of base bytes and parts of at
// most limit bytes: the sum of PartSize(n, base, limit) for n = 1..10000. With s3mount's defaults (8 MiB first
// parts, 256 MiB budget, so limit = 128 MiB) it is about 905 GiB; S3's 5 TiB object limit needs limit ≥ 2 GiB
// (a 4 GiB budget) with 8 MiB first parts.
func MaxObjectSize(base, limit int64) int64 {
	var total int64
	for n := 1; n <= s3client.MaxParts; n += partsPerStep {
		count := int64(min(partsPerStep, s3client.MaxParts-n+1))
		total += count * PartSize(n, base, limit)
	}
	return total
}

func clamp(v, lo, hi int64) int64 {
	return max(lo, min(v, hi))
}
