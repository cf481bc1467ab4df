package pickle

import "fmt"

// Pickle opcodes of protocols 0 to 5, named as in CPython's pickle.py (lower camel case
// here). The comment names the protocol that introduced each one. A decoder accepts every
// opcode whatever the PROTO header says, as CPython's does.
const (
	// Protocol 0: the text protocol.
	opMark    byte = '(' // push the mark object
	opStop    byte = '.' // end of pickle: the top of the stack is the value
	opPop     byte = '0' // discard the top of the stack (or the topmost mark)
	opDup     byte = '2' // duplicate the top of the stack
	opFloat   byte = 'F' // float as repr text, newline-terminated
	opInt     byte = 'I' // int as decimal text; "00"/"01" are False/True
	opLong    byte = 'L' // int as decimal text with an optional trailing "L"
	opNone    byte = 'N' // push None
	opPersID  byte = 'P' // persistent id as text (needs persistent_load)
	opReduce  byte = 'R' // call stack[-2] with the tuple stack[-1]
	opString  byte = 'S' // str (bytes in Python 2) as a quoted repr, newline-terminated
	opUnicode byte = 'V' // str in raw-unicode-escape, newline-terminated
	opAppend  byte = 'a' // list.append(top)
	opBuild   byte = 'b' // __setstate__(top) or __dict__.update(top)
	opGlobal  byte = 'c' // push module.name, two newline-terminated lines
	opDict    byte = 'd' // build a dict from the pairs above the mark
	opGet     byte = 'g' // push memo[decimal text]
	opInst    byte = 'i' // instance of the named class, args above the mark
	opList    byte = 'l' // build a list from the items above the mark
	opPut     byte = 'p' // memo[decimal text] = top
	opSetItem byte = 's' // dict[stack[-2]] = stack[-1]
	opTuple   byte = 't' // build a tuple from the items above the mark

	// Protocol 1: the first binary protocol.
	opBinInt      byte = 'J' // 4-byte little-endian signed int
	opBinInt1     byte = 'K' // 1-byte unsigned int
	opBinInt2     byte = 'M' // 2-byte little-endian unsigned int
	opBinPersID   byte = 'Q' // persistent id from the stack (needs persistent_load)
	opBinString   byte = 'T' // str (bytes in Python 2), 4-byte signed length
	opShortBinStr byte = 'U' // str (bytes in Python 2), 1-byte length
	opBinUnicode  byte = 'X' // UTF-8 str, 4-byte length
	opAppends     byte = 'e' // list.extend(items above the mark)
	opBinGet      byte = 'h' // push memo[1-byte index]
	opLongBinGet  byte = 'j' // push memo[4-byte index]
	opBinPut      byte = 'q' // memo[1-byte index] = top
	opLongBinPut  byte = 'r' // memo[4-byte index] = top
	opSetItems    byte = 'u' // dict.update(pairs above the mark)
	opBinFloat    byte = 'G' // 8-byte big-endian IEEE 754 float
	opEmptyTuple  byte = ')' // push ()
	opEmptyList   byte = ']' // push []
	opEmptyDict   byte = '}' // push {}
	opObj         byte = 'o' // instance of stack[mark+1], args above it
	opPopMark     byte = '1' // discard the stack down to and including the topmost mark

	// Protocol 2.
	opProto    byte = 0x80 // protocol version, 1 byte
	opNewObj   byte = 0x81 // cls.__new__(cls, *args)
	opExt1     byte = 0x82 // extension registry code, 1 byte
	opExt2     byte = 0x83 // extension registry code, 2 bytes
	opExt4     byte = 0x84 // extension registry code, 4 bytes
	opTuple1   byte = 0x85 // build a 1-tuple from the top item
	opTuple2   byte = 0x86 // build a 2-tuple from the top two items
	opTuple3   byte = 0x87 // build a 3-tuple from the top three items
	opNewTrue  byte = 0x88 // push True
	opNewFalse byte = 0x89 // push False
	opLong1    byte = 0x8a // little-endian two's complement int, 1-byte length
	opLong4    byte = 0x8b // little-endian two's complement int, 4-byte signed length

	// Protocol 3.
	opBinBytes      byte = 'B' // bytes, 4-byte length
	opShortBinBytes byte = 'C' // bytes, 1-byte length

	// Protocol 4.
	opShortBinUnicode byte = 0x8c // UTF-8 str, 1-byte length
	opBinUnicode8     byte = 0x8d // UTF-8 str, 8-byte length
	opBinBytes8       byte = 0x8e // bytes, 8-byte length
	opEmptySet        byte = 0x8f // push set()
	opAddItems        byte = 0x90 // set.update(items above the mark)
	opFrozenSet       byte = 0x91 // build a frozenset from the items above the mark
	opNewObjEx        byte = 0x92 // cls.__new__(cls, *args, **kwargs)
	opStackGlobal     byte = 0x93 // push the global named by the two strs on the stack
	opMemoize         byte = 0x94 // memo[len(memo)] = top
	opFrame           byte = 0x95 // 8-byte length of the frame that follows

	// Protocol 5.
	opByteArray8     byte = 0x96 // bytearray, 8-byte length
	opNextBuffer     byte = 0x97 // push the next out-of-band buffer
	opReadonlyBuffer byte = 0x98 // make the top buffer read-only
)

// highestProtocol is the newest protocol this package knows (pickle.HIGHEST_PROTOCOL).
const highestProtocol = 5

// opName returns the name of an opcode as pickletools prints it, or its hex value.
func opName(op byte) string {
	if n := opNames[op]; n != "" {
		return n
	}
	return fmt.Sprintf("0x%02x", op)
}

// opNames holds the name of each opcode, as pickletools prints it.
var opNames = [256]string{
	opMark: "MARK", opStop: "STOP", opPop: "POP", opPopMark: "POP_MARK", opDup: "DUP",
	opFloat: "FLOAT", opInt: "INT", opLong: "LONG", opNone: "NONE", opPersID: "PERSID",
	opReduce: "REDUCE", opString: "STRING", opUnicode: "UNICODE", opAppend: "APPEND",
	opBuild: "BUILD", opGlobal: "GLOBAL", opDict: "DICT", opGet: "GET", opInst: "INST",
	opList: "LIST", opPut: "PUT", opSetItem: "SETITEM", opTuple: "TUPLE",
	opBinInt: "BININT", opBinInt1: "BININT1", opBinInt2: "BININT2", opBinPersID: "BINPERSID",
	opBinString: "BINSTRING", opShortBinStr: "SHORT_BINSTRING", opBinUnicode: "BINUNICODE",
	opAppends: "APPENDS", opBinGet: "BINGET", opLongBinGet: "LONG_BINGET", opBinPut: "BINPUT",
	opLongBinPut: "LONG_BINPUT", opSetItems: "SETITEMS", opBinFloat: "BINFLOAT",
	opEmptyTuple: "EMPTY_TUPLE", opEmptyList: "EMPTY_LIST", opEmptyDict: "EMPTY_DICT",
	opObj: "OBJ", opProto: "PROTO", opNewObj: "NEWOBJ", opExt1: "EXT1", opExt2: "EXT2",
	opExt4: "EXT4", opTuple1: "TUPLE1", opTuple2: "TUPLE2", opTuple3: "TUPLE3",
	opNewTrue: "NEWTRUE", opNewFalse: "NEWFALSE", opLong1: "LONG1", opLong4: "LONG4",
	opBinBytes: "BINBYTES", opShortBinBytes: "SHORT_BINBYTES",
	opShortBinUnicode: "SHORT_BINUNICODE", opBinUnicode8: "BINUNICODE8",
	opBinBytes8: "BINBYTES8", opEmptySet: "EMPTY_SET", opAddItems: "ADDITEMS",
	opFrozenSet: "FROZENSET", opNewObjEx: "NEWOBJ_EX", opStackGlobal: "STACK_GLOBAL",
	opMemoize: "MEMOIZE", opFrame: "FRAME", opByteArray8: "BYTEARRAY8",
	opNextBuffer: "NEXT_BUFFER", opReadonlyBuffer: "READONLY_BUFFER",
}
