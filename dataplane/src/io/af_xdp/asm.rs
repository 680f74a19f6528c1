//! A BPF assembler just large enough for the steering program: the
//! instruction encoding of `linux/bpf.h`, registers, and forward jumps to
//! labels resolved when the program is finished.
//!
//! No clang, no libbpf: the program is a few dozen instructions, and writing
//! them here keeps the build and the machine free of a BPF toolchain.

/// One `struct bpf_insn`: opcode, destination and source registers (4 bits
/// each, destination low), signed 16-bit jump offset, signed 32-bit immediate.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u8,
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

const _: () = assert!(size_of::<Insn>() == 8);

/// A register, `r0` to `r10` (`r10` is the read-only frame pointer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reg(pub u8);

pub const R0: Reg = Reg(0);
pub const R1: Reg = Reg(1);
pub const R2: Reg = Reg(2);
pub const R3: Reg = Reg(3);
pub const R4: Reg = Reg(4);
pub const R5: Reg = Reg(5);
pub const R6: Reg = Reg(6);
/// The frame pointer: the program's 512 bytes of stack lie below it.
pub const R10: Reg = Reg(10);

// Instruction classes.
const LD: u8 = 0x00;
const LDX: u8 = 0x01;
const STX: u8 = 0x03;
const ALU: u8 = 0x04;
const JMP: u8 = 0x05;
const JMP32: u8 = 0x06;
const ALU64: u8 = 0x07;
// Sizes and modes of loads.
const W: u8 = 0x00;
const H: u8 = 0x08;
const B: u8 = 0x10;
const DW: u8 = 0x18;
const MEM: u8 = 0x60;
const IMM: u8 = 0x00;
// Operand source.
const K: u8 = 0x00;
const X: u8 = 0x08;
// ALU operations.
const ADD: u8 = 0x00;
const AND: u8 = 0x50;
const LSH: u8 = 0x60;
const RSH: u8 = 0x70;
const MOV: u8 = 0xb0;
const END: u8 = 0xd0;
const TO_BE: u8 = 0x08;
// Jump operations.
const JA: u8 = 0x00;
const CALL: u8 = 0x80;
const EXIT: u8 = 0x90;
/// `src_reg` of a 64-bit immediate load that names a map by descriptor.
const PSEUDO_MAP_FD: u8 = 1;

/// A comparison of a jump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cond {
    Eq = 0x10,
    Gt = 0x20,
    Ne = 0x50,
    Lt = 0xa0,
}

/// Width of a memory access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    U8,
    U16,
    U32,
}

impl Size {
    fn bits(self) -> u8 {
        match self {
            Size::U8 => B,
            Size::U16 => H,
            Size::U32 => W,
        }
    }
}

/// A jump target, bound to a position with [`Asm::bind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Label(usize);

/// Why a program could not be assembled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AsmError {
    /// A jump names a label that was never bound.
    Unbound(usize),
    /// A jump's distance does not fit its 16-bit offset.
    TooFar,
}

/// Instructions being written, and the jumps still waiting for their labels.
#[derive(Debug, Default)]
pub struct Asm {
    insns: Vec<Insn>,
    labels: Vec<Option<usize>>,
    fixups: Vec<(usize, Label)>,
}

/// The bits of `value` as the `i32` an immediate field holds.
pub fn bits_i32(value: u32) -> i32 {
    i32::from_ne_bytes(value.to_ne_bytes())
}

fn regs(dst: Reg, src: Reg) -> u8 {
    (src.0 << 4) | (dst.0 & 0x0f)
}

impl Asm {
    pub fn new() -> Self {
        Self::default()
    }

    fn push(&mut self, code: u8, dst: Reg, src: Reg, off: i16, imm: i32) {
        self.insns.push(Insn {
            code,
            regs: regs(dst, src),
            off,
            imm,
        });
    }

    /// A fresh, unbound label.
    pub fn label(&mut self) -> Label {
        self.labels.push(None);
        Label(self.labels.len() - 1)
    }

    /// Binds `label` to the next instruction.
    pub fn bind(&mut self, label: Label) {
        self.labels[label.0] = Some(self.insns.len());
    }

    /// `dst = src` (64 bits).
    pub fn mov(&mut self, dst: Reg, src: Reg) {
        self.push(ALU64 | MOV | X, dst, src, 0, 0);
    }

    /// `dst = imm` (64 bits, sign-extended).
    pub fn mov_imm(&mut self, dst: Reg, imm: i32) {
        self.push(ALU64 | MOV | K, dst, R0, 0, imm);
    }

    /// `dst += imm` (64 bits).
    pub fn add_imm(&mut self, dst: Reg, imm: i32) {
        self.push(ALU64 | ADD | K, dst, R0, 0, imm);
    }

    /// `dst += src` (64 bits).
    pub fn add(&mut self, dst: Reg, src: Reg) {
        self.push(ALU64 | ADD | X, dst, src, 0, 0);
    }

    /// `dst &= imm` (64 bits).
    pub fn and_imm(&mut self, dst: Reg, imm: i32) {
        self.push(ALU64 | AND | K, dst, R0, 0, imm);
    }

    /// `dst <<= imm` (64 bits).
    pub fn lsh_imm(&mut self, dst: Reg, imm: i32) {
        self.push(ALU64 | LSH | K, dst, R0, 0, imm);
    }

    /// `dst >>= imm` (64 bits, logical).
    pub fn rsh_imm(&mut self, dst: Reg, imm: i32) {
        self.push(ALU64 | RSH | K, dst, R0, 0, imm);
    }

    /// `dst = be16(dst)`: the low 16 bits read as big-endian, upper bits cleared.
    pub fn be16(&mut self, dst: Reg) {
        self.push(ALU | END | TO_BE, dst, R0, 0, 16);
    }

    /// `dst = *(size *)(src + off)`, zero-extended.
    pub fn load(&mut self, size: Size, dst: Reg, src: Reg, off: i16) {
        self.push(LDX | MEM | size.bits(), dst, src, off, 0);
    }

    /// `*(size *)(dst + off) = src`.
    pub fn store(&mut self, size: Size, dst: Reg, off: i16, src: Reg) {
        self.push(STX | MEM | size.bits(), dst, src, off, 0);
    }

    /// `dst = map` as the kernel sees it: a 64-bit immediate load naming the
    /// map by its descriptor, which the loader replaces with the map.
    pub fn load_map_fd(&mut self, dst: Reg, fd: i32) {
        self.push(LD | IMM | DW, dst, Reg(PSEUDO_MAP_FD), 0, fd);
        self.push(0, R0, R0, 0, 0);
    }

    fn jump_to(&mut self, code: u8, dst: Reg, src: Reg, imm: i32, to: Label) {
        self.fixups.push((self.insns.len(), to));
        self.push(code, dst, src, 0, imm);
    }

    /// `goto to`.
    pub fn ja(&mut self, to: Label) {
        self.jump_to(JMP | JA, R0, R0, 0, to);
    }

    /// `if dst <cond> imm goto to`, comparing all 64 bits (imm sign-extended).
    pub fn jmp_imm(&mut self, cond: Cond, dst: Reg, imm: i32, to: Label) {
        self.jump_to(JMP | cond as u8 | K, dst, R0, imm, to);
    }

    /// `if dst <cond> src goto to` (64 bits).
    pub fn jmp_reg(&mut self, cond: Cond, dst: Reg, src: Reg, to: Label) {
        self.jump_to(JMP | cond as u8 | X, dst, src, 0, to);
    }

    /// `if (u32)dst <cond> (u32)imm goto to`: a 32-bit comparison, so that a
    /// word with its top bit set compares equal to the same bits as `imm`.
    pub fn jmp32_imm(&mut self, cond: Cond, dst: Reg, imm: u32, to: Label) {
        self.jump_to(JMP32 | cond as u8 | K, dst, R0, bits_i32(imm), to);
    }

    /// Calls helper number `helper`.
    pub fn call(&mut self, helper: i32) {
        self.push(JMP | CALL, R0, R0, 0, helper);
    }

    /// Returns `r0`.
    pub fn exit(&mut self) {
        self.push(JMP | EXIT, R0, R0, 0, 0);
    }

    /// The instructions, with every jump pointed at its label.
    pub fn finish(mut self) -> Result<Vec<Insn>, AsmError> {
        for &(at, label) in &self.fixups {
            let target = self.labels[label.0].ok_or(AsmError::Unbound(label.0))?;
            let next = at + 1;
            let off = if target >= next {
                i16::try_from(target - next)
            } else {
                i16::try_from(next - target).map(|back| -back)
            };
            self.insns[at].off = off.map_err(|_| AsmError::TooFar)?;
        }
        Ok(self.insns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_match_the_kernel_s() {
        let mut a = Asm::new();
        a.mov_imm(R0, 2);
        a.load(Size::U32, R2, R1, 4);
        a.store(Size::U32, R10, -4, R5);
        a.be16(R5);
        a.load_map_fd(R1, 7);
        a.call(51);
        a.exit();
        let insns = a.finish().unwrap();
        let raw: Vec<(u8, u8, i16, i32)> = insns
            .iter()
            .map(|i| (i.code, i.regs, i.off, i.imm))
            .collect();
        assert_eq!(
            raw,
            [
                (0xb7, 0x00, 0, 2),  // BPF_MOV64_IMM(r0, 2)
                (0x61, 0x12, 4, 0),  // BPF_LDX_MEM(BPF_W, r2, r1, 4)
                (0x63, 0x5a, -4, 0), // BPF_STX_MEM(BPF_W, r10, r5, -4)
                (0xdc, 0x05, 0, 16), // BPF_ENDIAN(BPF_TO_BE, r5, 16)
                (0x18, 0x11, 0, 7),  // BPF_LD_MAP_FD(r1, 7), first half
                (0x00, 0x00, 0, 0),  // second half
                (0x85, 0x00, 0, 51), // BPF_CALL bpf_redirect_map
                (0x95, 0x00, 0, 0),  // BPF_EXIT
            ]
        );
    }

    #[test]
    fn jumps_land_on_their_labels_forward_and_back() {
        let mut a = Asm::new();
        let back = a.label();
        let ahead = a.label();
        a.bind(back);
        a.jmp_imm(Cond::Eq, R1, 1, ahead);
        a.mov_imm(R0, 0);
        a.ja(back);
        a.bind(ahead);
        a.exit();
        let insns = a.finish().unwrap();
        assert_eq!(insns[0].off, 2);
        assert_eq!(insns[0].code, 0x15);
        assert_eq!(insns[2].off, -3);
    }

    #[test]
    fn an_unbound_label_is_an_error() {
        let mut a = Asm::new();
        let nowhere = a.label();
        a.ja(nowhere);
        assert_eq!(a.finish(), Err(AsmError::Unbound(0)));
    }
}
