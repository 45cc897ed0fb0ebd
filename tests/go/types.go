package main

import (
	"encoding/gob"
	"fmt"
	"strconv"
	"time"
)

// Types used only by the golden table. The Python table in tests/test_gob_golden.py
// mirrors them field by field; gob sends each struct under its bare type name.

type Point struct{ X, Y int }

type Inner struct {
	A int
	B string
}

type Outer struct {
	Name  string
	In    Inner
	InPtr *Inner
	Tags  []string
	Score float64
}

// Sparse has fields of every kind, most left zero: gob omits zero fields.
type Sparse struct {
	A int
	B string
	C bool
	D float64
	E []int
	F map[string]int
	G *Inner
	H uint
	I [2]int
}

type Node struct {
	Val  int
	Next *Node
}

type Tree struct {
	Val         string
	Left, Right *Tree
}

type Base struct {
	ID  int
	Tag string
}

// Derived embeds Base: on the wire it is an ordinary field named "Base".
type Derived struct {
	Base
	Extra string
}

// Ptrs has pointers of several levels; gob flattens them all.
type Ptrs struct {
	P   *int
	PP  **string
	PPP ***Point
	Nil *Inner
}

type Shape interface{ Area() float64 }

// Circle is registered as a value under an explicit name.
type Circle struct{ R float64 }

func (c Circle) Area() float64 { return 3 * c.R * c.R }

// Square is registered as a pointer with gob.Register: name "*main.Square".
type Square struct{ Side int }

func (s *Square) Area() float64 { return float64(s.Side * s.Side) }

// Holder carries interface values: set, nil (omitted), and in slices (nil elements sent
// with an empty name).
type Holder struct {
	Label string
	Shape Shape
	Empty Shape
	Many  []Shape
	Any   []interface{}
}

// Celsius is a GobEncoder: its wire form is the text "<n>C" (unexported field).
type Celsius struct{ deg int }

func (c Celsius) GobEncode() ([]byte, error) { return []byte(strconv.Itoa(c.deg) + "C"), nil }

func (c *Celsius) GobDecode(b []byte) error {
	if len(b) < 2 || b[len(b)-1] != 'C' {
		return fmt.Errorf("bad Celsius %q", b)
	}
	n, err := strconv.Atoi(string(b[:len(b)-1]))
	c.deg = n
	return err
}

// Version is a BinaryMarshaler only: its wire form is two bytes, major and minor.
type Version struct{ major, minor uint8 }

func (v Version) MarshalBinary() ([]byte, error) { return []byte{v.major, v.minor}, nil }

func (v *Version) UnmarshalBinary(b []byte) error {
	if len(b) != 2 {
		return fmt.Errorf("bad Version %x", b)
	}
	v.major, v.minor = b[0], b[1]
	return nil
}

// Color is a TextMarshaler only. Go's gob ignores TextMarshaler (golang.org/issue/6760),
// so a Color travels as a plain struct {R, G, B uint8}.
type Color struct{ R, G, B uint8 }

func (c Color) MarshalText() ([]byte, error) {
	return []byte(fmt.Sprintf("#%02x%02x%02x", c.R, c.G, c.B)), nil
}

func (c *Color) UnmarshalText(b []byte) error {
	_, err := fmt.Sscanf(string(b), "#%02x%02x%02x", &c.R, &c.G, &c.B)
	return err
}

// Weather holds the three marshaler kinds as struct fields (zero ones are omitted).
type Weather struct {
	City    string
	Temp    Celsius
	TempPtr *Celsius
	Ver     Version
	NoVer   Version
	Col     Color
}

// Event holds times: a set one and a zero one (omitted on the wire).
type Event struct {
	Name string
	At   time.Time
	Zero time.Time
}

func init() {
	gob.RegisterName("golden.Circle", Circle{})
	gob.Register(&Square{})
}
