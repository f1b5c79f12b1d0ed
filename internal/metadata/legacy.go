package metadata

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/chronik-stream/chronik/internal/storage"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// LegacyDir is where releases before the metadata quorum kept the metadata
// log (a segment log of JSON records, replayed from the start).
const LegacyDir = "__cluster_metadata"

// migrateLegacy imports a metadata log written before the quorum: its
// records are replayed into an image as those releases did, and the image
// is committed as one "image" entry, applied only to a quorum that has no
// cluster id yet. The old log is removed once the quorum holds its
// content, so a crash at any point leaves one of the two to read.
//
// In its place, and in every data dir, LegacyDir is a plain file saying
// where the metadata went: a release before the quorum then fails to open
// its metadata log and does not start, where with no log at all it would
// start a new cluster and remove every partition directory as an orphan.
func (s *Store) migrateLegacy(dataDir string) error {
	dir := filepath.Join(dataDir, LegacyDir)
	fi, err := os.Stat(dir)
	switch {
	case err == nil && !fi.IsDir():
		return nil
	case err == nil:
		if s.Image().ClusterID == "" {
			im, n, err := readLegacy(dir, s)
			if err != nil {
				return err
			}
			if n > 0 {
				if err := s.commit(&record{Type: "image", Image: im.file()}); err != nil && !errors.Is(err, errClusterSet) {
					return fmt.Errorf("metadata: import %s: %w", dir, err)
				}
				s.lg.Info("metadata log imported into the metadata quorum", "from", dir, "records", n,
					"topics", len(im.Topics), "cluster_id", im.ClusterID)
			}
		}
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("metadata: remove the imported %s: %w", dir, err)
		}
	case !errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("metadata: %w", err)
	}
	return storage.OverwriteFile(dir, []byte(guardText), true)
}

const guardText = `This data dir keeps its metadata in __cluster_metadata-0/ (a Raft log). Chronik releases
before the metadata quorum read __cluster_metadata/ as a directory; finding this file instead, they
refuse to start rather than start an empty cluster over these partitions.
`

func readLegacy(dir string, s *Store) (*Image, int, error) {
	l, err := storage.Open(dir, storage.Options{SegmentBytes: 64 << 20, Logger: s.lg})
	if err != nil {
		return nil, 0, fmt.Errorf("metadata: open %s: %w", dir, err)
	}
	defer l.Close()
	im, n := emptyImage(), 0
	err = storage.ReplayRecords(l, -1, nil, func(off int64, r *kmsg.Record) error {
		var rec record
		if err := json.Unmarshal(r.Value, &rec); err != nil {
			return fmt.Errorf("metadata: %s record at offset %d: %w", dir, off, err)
		}
		rec.Create = false // those releases had no such flag: a topic record was an upsert
		im.apply(&rec)
		n++
		return nil
	})
	return im, n, err
}
