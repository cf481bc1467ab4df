package pickle

import (
	"errors"
	"fmt"
)

// Causes of decoding errors. A *DecodeError wraps exactly one of them, so callers test
// with errors.Is(err, pickle.ErrTruncated) and so on.
var (
	// ErrTruncated: the input ends before the pickle does. CPython raises EOFError
	// ("Ran out of input") when the input ends where an opcode should start — then
	// DecodeError.Op is "" — and UnpicklingError ("pickle data was truncated") when it
	// ends inside an opcode's argument or a declared length (FRAME, BINBYTES8, ...)
	// reaches past the end.
	ErrTruncated = errors.New("data truncated")
	// ErrUnknownOpcode: a byte that is no opcode of protocols 0 to 5.
	ErrUnknownOpcode = errors.New("unknown opcode")
	// ErrProtocol: a PROTO opcode naming a protocol newer than 5.
	ErrProtocol = errors.New("unsupported protocol")
	// ErrStack: an opcode needs more stack items than there are above the topmost mark,
	// a MARK is missing or left where a value is needed, or a DICT/SETITEMS has an odd
	// number of items.
	ErrStack = errors.New("bad stack")
	// ErrMemo: GET of a memo entry that was never PUT, or a negative PUT index.
	ErrMemo = errors.New("bad memo reference")
	// ErrSyntax: a malformed opcode argument: a number that does not parse, a badly
	// quoted or escaped string, text that is not valid in its encoding, a negative length.
	ErrSyntax = errors.New("malformed argument")
	// ErrOperation: an opcode applied to a value that does not support it, where CPython
	// raises TypeError, AttributeError, IndexError or ValueError: calling something that
	// is not callable, arguments that are not a tuple, APPEND to an int, an unhashable
	// dict key (the error also wraps an *UnhashableError), a list index out of range.
	ErrOperation = errors.New("invalid operation")
	// ErrUnsupported: input CPython reads only when given more than pickle.loads has by
	// default (persistent ids, the extension registry, out-of-band buffers), or that the
	// value model cannot represent (see the package documentation).
	ErrUnsupported = errors.New("unsupported")
	// ErrLimit: a Decoder limit (MaxDepth, MaxStack, MaxMemo), the size limit on dict
	// keys and set items, or CPython's 4300-digit limit on decimal integer text.
	ErrLimit = errors.New("limit exceeded")
	// ErrMemory: the decoding would allocate more than its memory budget
	// (Decoder.MemoryPerByte, Decoder.MaxMemory). It wraps ErrLimit, so
	// errors.Is(err, ErrLimit) holds for it too.
	ErrMemory = fmt.Errorf("%w: memory budget", ErrLimit)
)

// DecodeError is the error returned for input that does not decode.
type DecodeError struct {
	Offset int    // byte offset of the opcode that failed (the input length when it ran out)
	Op     string // name of that opcode, e.g. "SETITEMS"; "" when the input ran out before an opcode
	Err    error  // the cause, wrapping one of the Err* values above
}

func (e *DecodeError) Error() string {
	if e.Op == "" {
		return fmt.Sprintf("pickle: at offset %d: %v", e.Offset, e.Err)
	}
	return fmt.Sprintf("pickle: %s at offset %d: %v", e.Op, e.Offset, e.Err)
}

// Unwrap returns the cause.
func (e *DecodeError) Unwrap() error { return e.Err }
