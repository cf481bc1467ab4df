package store

import "encoding/binary"

// Pickle opcodes that LooksComplete looks at.
const (
	opProto = 0x80 // PROTO n: first opcode of every pickle of protocol 2 and later
	opFrame = 0x95 // FRAME n8: the next n bytes are whole opcodes (protocol 4 and later)
	opStop  = '.'  // STOP: last byte of every pickle
)

// LooksComplete reports whether data can be a whole session file rather than what a
// reader sees while a Python writer is still writing one. It is the default check of
// Load (see WithCheck) and knows only this much of the pickle format:
//
//   - empty data is incomplete (session3's writer truncates before it writes);
//   - data starting with a NUL byte is incomplete: no pickle starts so, but the hole
//     a Python writer leaves when another truncates the file under it does;
//   - other data that does not start with PROTO (0x80) is not a pickle of protocol
//     2 or later and is taken as it is;
//   - a pickle must end with the STOP opcode '.' and, from protocol 4 on, hold its
//     whole first frame.
//
// CPython's pickler writes a session of up to 64 KiB as a single frame, and session3's
// writer leaves at most its last buffered write (the last frame) unwritten when it
// releases its lock; so a reader sees none of such a session or all of it, and these
// tests tell the two apart. A larger session is written in several frames; seen
// without its last frame it passes only if the frame before happens to end with the
// byte '.'. WithCheck can plug in a full decoder for such sessions. Bytes after the
// STOP opcode are left alone: Python's unpickler ignores them too, and session3's
// writers leave them when two save one session at once.
func LooksComplete(data []byte) bool {
	if len(data) == 0 {
		return false
	}
	return looksComplete(data[:min(len(data), 11)], data[len(data)-1], int64(len(data)))
}

// looksComplete is LooksComplete for data of size bytes (size > 0), given its first
// bytes (head: up to 11, all of them if size is smaller) and its last byte.
func looksComplete(head []byte, last byte, size int64) bool {
	switch {
	case head[0] == 0:
		return false
	case head[0] != opProto:
		return true
	case size < 3 || last != opStop:
		return false
	case head[1] >= 4 && head[2] == opFrame:
		const header = 3 + 8 // PROTO n, FRAME, 8-byte length
		return size >= header && binary.LittleEndian.Uint64(head[3:]) <= uint64(size-header)
	}
	return true
}
