//! A restricted unpickler for what `torch.save` writes: nested dicts, lists and tuples of tensors,
//! numbers and strings. It never runs code: the few globals a checkpoint needs (`OrderedDict`,
//! the tensor rebuild functions, storage types) are recognised by name and everything else is
//! refused.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use tch::Kind;

/// Why a pickle could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PickleError {
    /// The data ends before the pickle does.
    #[error("the data ends unexpectedly at byte {0}")]
    Truncated(usize),
    /// The bytes do not form a pickle of the expected shape.
    #[error("{0}")]
    Corrupt(String),
    /// A well-formed pickle that uses something this reader does not load.
    #[error("{0}")]
    Unsupported(String),
}

type Result<T> = std::result::Result<T, PickleError>;

fn corrupt(message: impl Into<String>) -> PickleError {
    PickleError::Corrupt(message.into())
}

/// A reference to (part of) one stored storage: `key` names the data record, `kind` is its
/// element type and `view` an optional `(offset, numel)` window in elements (legacy files).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StorageRef {
    pub key: String,
    pub kind: Kind,
    pub view: Option<(i64, i64)>,
}

/// A tensor as `_rebuild_tensor_v2` describes it: a strided window into a storage.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TensorRef {
    pub storage: Rc<StorageRef>,
    pub offset: i64,
    pub size: Vec<i64>,
    pub stride: Vec<i64>,
}

/// The globals this reader accepts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Global {
    OrderedDict,
    RebuildTensor,
    RebuildTensorV2,
    RebuildParameter,
    RebuildParameterWithState,
    CodecsEncode,
    StorageType(Kind),
}

/// A value on the unpickler's stack. Lists and dicts are shared and mutable, as in Python, so
/// that items added after memoisation are seen by every reference. Containers are dropped
/// without recursion ([`Items`], [`Pairs`]), so that no nesting depth can overflow the stack.
#[derive(Clone)]
pub(crate) enum Value {
    None,
    Bool(bool),
    Int(i64),
    BigInt(i128),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Tuple(Rc<Items>),
    List(Rc<RefCell<Items>>),
    Dict(Rc<RefCell<Pairs>>),
    Global(Global),
    Storage(Rc<StorageRef>),
    Tensor(Rc<TensorRef>),
}

/// The items of a tuple or list; dropping them never recurses.
#[derive(Default)]
pub(crate) struct Items(pub Vec<Value>);

/// The entries of a dict, in insertion order; dropping them never recurses.
#[derive(Default)]
pub(crate) struct Pairs(pub Vec<(Value, Value)>);

impl Drop for Items {
    fn drop(&mut self) {
        drop_iteratively(std::mem::take(&mut self.0));
    }
}

impl Drop for Pairs {
    fn drop(&mut self) {
        let flat = std::mem::take(&mut self.0)
            .into_iter()
            .flat_map(|(k, v)| [k, v])
            .collect();
        drop_iteratively(flat);
    }
}

/// Drops values with an explicit work list: a container whose last reference goes has its
/// items moved to the list before it is freed, so it frees nothing nested itself.
fn drop_iteratively(mut pending: Vec<Value>) {
    while let Some(value) = pending.pop() {
        match value {
            Value::Tuple(items) => {
                if let Ok(mut items) = Rc::try_unwrap(items) {
                    pending.append(&mut items.0);
                }
            }
            Value::List(items) => {
                if let Ok(items) = Rc::try_unwrap(items) {
                    pending.append(&mut items.into_inner().0);
                }
            }
            Value::Dict(pairs) => {
                if let Ok(pairs) = Rc::try_unwrap(pairs) {
                    let mut pairs = pairs.into_inner();
                    for (k, v) in pairs.0.drain(..) {
                        pending.push(k);
                        pending.push(v);
                    }
                }
            }
            _ => {}
        }
    }
}

impl std::fmt::Debug for Value {
    /// The type and, for containers, the length only: a value may nest without bound.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Int(v) => write!(f, "{v}"),
            Value::BigInt(v) => write!(f, "{v}"),
            Value::Bool(v) => write!(f, "{v}"),
            Value::Float(v) => write!(f, "{v}"),
            Value::Tuple(items) => write!(f, "tuple of {}", items.0.len()),
            Value::List(items) => write!(f, "list of {}", items.borrow().0.len()),
            Value::Dict(pairs) => write!(f, "dict of {}", pairs.borrow().0.len()),
            other => f.write_str(other.type_name()),
        }
    }
}

impl Value {
    /// A short name of the value's type for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "bool",
            Value::Int(_) | Value::BigInt(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::Bytes(_) => "bytes",
            Value::Tuple(_) => "tuple",
            Value::List(_) => "list",
            Value::Dict(_) => "dict",
            Value::Global(_) => "class or function",
            Value::Storage(_) => "storage",
            Value::Tensor(_) => "tensor",
        }
    }

    /// The items of a tuple or list, paid for from `budget`.
    fn sequence(&self, budget: &mut Budget) -> Result<Option<Vec<Value>>> {
        let items = match self {
            Value::Tuple(items) => items.0.clone(),
            Value::List(items) => items.borrow().0.clone(),
            _ => return Ok(None),
        };
        budget.spend(items.len())?;
        Ok(Some(items))
    }

    fn as_int(&self, what: &str) -> Result<i64> {
        match self {
            Value::Int(v) => Ok(*v),
            Value::Bool(v) => Ok(i64::from(*v)),
            other => Err(corrupt(format!(
                "{what} is a {} where an int was expected",
                other.type_name()
            ))),
        }
    }

    fn as_ints(&self, what: &str, budget: &mut Budget) -> Result<Vec<i64>> {
        let items = self.sequence(budget)?.ok_or_else(|| {
            corrupt(format!(
                "{what} is a {} where a tuple was expected",
                self.type_name()
            ))
        })?;
        items.iter().map(|v| v.as_int(what)).collect()
    }
}

/// The globals a checkpoint may name, by `module` and `name`.
fn resolve_global(module: &str, name: &str) -> Result<Global> {
    let global = match (module, name) {
        ("collections", "OrderedDict") => Global::OrderedDict,
        ("torch._utils", "_rebuild_tensor") => Global::RebuildTensor,
        ("torch._utils", "_rebuild_tensor_v2") => Global::RebuildTensorV2,
        ("torch._utils", "_rebuild_parameter") => Global::RebuildParameter,
        ("torch._utils", "_rebuild_parameter_with_state") => Global::RebuildParameterWithState,
        ("_codecs", "encode") => Global::CodecsEncode,
        ("torch.storage" | "torch", "UntypedStorage") => Global::StorageType(Kind::Uint8),
        ("torch" | "torch.cuda", storage) => match storage_kind(storage) {
            Some(kind) => Global::StorageType(kind),
            None => return Err(unsupported_global(module, name)),
        },
        _ => return Err(unsupported_global(module, name)),
    };
    Ok(global)
}

/// The error for a global that a checkpoint of tensors has no need of.
fn unsupported_global(module: &str, name: &str) -> PickleError {
    PickleError::Unsupported(format!(
        "the checkpoint stores an object of type `{module}.{name}`, which is not read here (only \
         tensors, dicts, lists, numbers and strings are); save just the weights with \
         `torch.save(model.state_dict(), path)`"
    ))
}

/// The element type of a typed storage class such as `FloatStorage`.
fn storage_kind(name: &str) -> Option<Kind> {
    Some(match name {
        "FloatStorage" => Kind::Float,
        "DoubleStorage" => Kind::Double,
        "HalfStorage" => Kind::Half,
        "BFloat16Storage" => Kind::BFloat16,
        "LongStorage" => Kind::Int64,
        "IntStorage" => Kind::Int,
        "ShortStorage" => Kind::Int16,
        "CharStorage" => Kind::Int8,
        "ByteStorage" => Kind::Uint8,
        "BoolStorage" => Kind::Bool,
        _ => return None,
    })
}

/// Turns a persistent id `('storage', type, key, location, numel[, view_metadata])` into a
/// storage reference. The sixth element exists in legacy files: `None` or
/// `(view_key, offset, numel)` for a window into the storage `key`.
fn storage_from_pid(pid: &Value, budget: &mut Budget) -> Result<StorageRef> {
    let items = pid.sequence(budget)?.ok_or_else(|| {
        corrupt(format!(
            "a persistent id is a {}, not a tuple",
            pid.type_name()
        ))
    })?;
    match items.first() {
        Some(Value::Str(tag)) if tag == "storage" => {}
        Some(Value::Str(tag)) if tag == "module" => {
            return Err(PickleError::Unsupported(
                "the checkpoint is a whole pickled nn.Module, which needs its Python code to \
                 load; save `model.state_dict()` instead"
                    .into(),
            ));
        }
        _ => return Err(corrupt("a persistent id does not start with 'storage'")),
    }
    if !(5..=6).contains(&items.len()) {
        return Err(corrupt(format!(
            "a storage id has {} fields, expected 5 or 6",
            items.len()
        )));
    }
    let kind = match &items[1] {
        Value::Global(Global::StorageType(kind)) => *kind,
        other => {
            return Err(corrupt(format!(
                "a storage type is a {}",
                other.type_name()
            )));
        }
    };
    let key = match &items[2] {
        Value::Str(key) => key.clone(),
        Value::Bytes(key) if key.is_ascii() => key.iter().map(|&b| char::from(b)).collect(),
        other => return Err(corrupt(format!("a storage key is a {}", other.type_name()))),
    };
    let view = match items.get(5) {
        None | Some(Value::None) => None,
        Some(meta) => {
            let meta = meta
                .sequence(budget)?
                .filter(|m| m.len() == 3)
                .ok_or_else(|| {
                    corrupt(format!("storage view metadata is a {}", meta.type_name()))
                })?;
            Some((
                meta[1].as_int("a view offset")?,
                meta[2].as_int("a view size")?,
            ))
        }
    };
    Ok(StorageRef { key, kind, view })
}

/// Builds a tensor from the arguments of `_rebuild_tensor` / `_rebuild_tensor_v2`:
/// `(storage, storage_offset, size, stride, ...)`.
fn rebuild_tensor(args: &[Value], budget: &mut Budget) -> Result<Value> {
    if args.len() < 4 {
        return Err(corrupt(format!(
            "a tensor is rebuilt from {} arguments, expected at least 4",
            args.len()
        )));
    }
    let storage = match &args[0] {
        Value::Storage(storage) => storage.clone(),
        other => {
            return Err(corrupt(format!(
                "a tensor's storage is a {}",
                other.type_name()
            )));
        }
    };
    let offset = args[1].as_int("a storage offset")?;
    let size = args[2].as_ints("a tensor size", budget)?;
    let stride = args[3].as_ints("a tensor stride", budget)?;
    Ok(Value::Tensor(Rc::new(TensorRef {
        storage,
        offset,
        size,
        stride,
    })))
}

/// Applies a callable global to its arguments (the REDUCE opcode).
fn call(global: Global, args: &[Value], budget: &mut Budget) -> Result<Value> {
    match global {
        Global::OrderedDict => {
            let mut entries = Vec::new();
            if let Some(items) = args.first() {
                let items = items
                    .sequence(budget)?
                    .ok_or_else(|| corrupt("OrderedDict items are not a list"))?;
                for item in items {
                    match item.sequence(budget)?.as_deref() {
                        Some([k, v]) => entries.push((k.clone(), v.clone())),
                        _ => return Err(corrupt("an OrderedDict item is not a (key, value) pair")),
                    }
                }
            }
            Ok(Value::Dict(Rc::new(RefCell::new(Pairs(entries)))))
        }
        Global::RebuildTensor | Global::RebuildTensorV2 => rebuild_tensor(args, budget),
        Global::RebuildParameter | Global::RebuildParameterWithState => match args.first() {
            Some(tensor @ Value::Tensor(_)) => Ok(tensor.clone()),
            Some(other) => Err(corrupt(format!(
                "a parameter holds a {}, not a tensor",
                other.type_name()
            ))),
            None => Err(corrupt("a parameter is rebuilt without arguments")),
        },
        Global::CodecsEncode => match args.first() {
            Some(Value::Str(text)) => {
                Ok(Value::Bytes(text.chars().map(|c| c as u32 as u8).collect()))
            }
            _ => Err(corrupt("`_codecs.encode` is called without a string")),
        },
        Global::StorageType(_) => Err(PickleError::Unsupported(
            "the checkpoint constructs a storage directly, which is not read here".into(),
        )),
    }
}

/// The work a pickle may cause, in values stored or copied: a fixed multiple of its length, so
/// that memo references (which cost a few bytes each) cannot multiply the work without bound.
pub(crate) struct Budget {
    left: usize,
}

/// Values stored or copied per byte of pickle that a checkpoint of tensors never exceeds.
const WORK_PER_BYTE: usize = 4;

impl Budget {
    /// The budget of a pickle of `len` bytes.
    pub fn for_len(len: usize) -> Budget {
        Budget {
            left: len.saturating_mul(WORK_PER_BYTE).saturating_add(4096),
        }
    }

    /// Takes `n` units, or fails once the budget is spent.
    pub fn spend(&mut self, n: usize) -> Result<()> {
        match self.left.checked_sub(n) {
            Some(left) => {
                self.left = left;
                Ok(())
            }
            None => Err(corrupt(
                "its objects refer to each other so often (memo references repeated) that reading \
                 them would take far more work than its size justifies; the file is crafted or corrupted",
            )),
        }
    }
}

/// One pickle read from a buffer.
pub(crate) struct Loaded {
    /// The pickled object.
    pub value: Value,
    /// The position just after the STOP opcode, where a following pickle would start.
    pub end: usize,
    /// Every storage the pickle refers to, in the order they appear.
    pub storages: Vec<Rc<StorageRef>>,
    /// Values the pickle created: a bound on the work of walking the object honestly.
    pub created: usize,
}

/// Reads one pickle starting at `data[start]`; several pickles written one after the other can
/// be read in turn by starting each at the previous one's `end`.
pub(crate) fn load(data: &[u8], start: usize) -> Result<Loaded> {
    let mut machine = Machine {
        data,
        pos: start,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
        storages: Vec::new(),
        budget: Budget::for_len(data.len().saturating_sub(start)),
        created: 0,
    };
    let value = machine.run()?;
    Ok(Loaded {
        value,
        end: machine.pos,
        storages: std::mem::take(&mut machine.storages),
        created: machine.created,
    })
}

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: HashMap<u32, Value>,
    storages: Vec<Rc<StorageRef>>,
    budget: Budget,
    created: usize,
}

impl<'a> Machine<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.data.len());
        let end = end.ok_or(PickleError::Truncated(self.data.len()))?;
        let bytes = &self.data[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64_len(&mut self) -> Result<usize> {
        usize::try_from(u64::from_le_bytes(self.array()?))
            .map_err(|_| corrupt("a length does not fit in memory"))
    }

    fn line(&mut self) -> Result<String> {
        let rest = &self.data[self.pos..];
        let len = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or(PickleError::Truncated(self.data.len()))?;
        let text =
            std::str::from_utf8(&rest[..len]).map_err(|_| corrupt("a global name is not UTF-8"))?;
        self.pos += len + 1;
        Ok(text.to_string())
    }

    fn text(&mut self, n: usize) -> Result<String> {
        let bytes = self.take(n)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| corrupt("a string is not valid UTF-8"))
    }

    /// Python 2 `str`: text when it is UTF-8, bytes otherwise.
    fn py2_string(&mut self, n: usize) -> Result<Value> {
        let bytes = self.take(n)?.to_vec();
        Ok(match String::from_utf8(bytes) {
            Ok(text) => Value::Str(text),
            Err(err) => Value::Bytes(err.into_bytes()),
        })
    }

    fn pop(&mut self) -> Result<Value> {
        if self
            .marks
            .last()
            .is_some_and(|&mark| mark >= self.stack.len())
        {
            return Err(corrupt(format!(
                "a value is popped past a mark at byte {}",
                self.pos
            )));
        }
        self.stack
            .pop()
            .ok_or_else(|| corrupt(format!("the pickle stack underflows at byte {}", self.pos)))
    }

    fn top(&mut self) -> Result<&mut Value> {
        let pos = self.pos;
        self.stack
            .last_mut()
            .ok_or_else(|| corrupt(format!("the pickle stack is empty at byte {pos}")))
    }

    fn pop_mark(&mut self) -> Result<Vec<Value>> {
        let mark = self
            .marks
            .pop()
            .ok_or_else(|| corrupt(format!("no mark to pop at byte {}", self.pos)))?;
        Ok(self.stack.split_off(mark))
    }

    fn tuple(&mut self, n: usize) -> Result<()> {
        let mut items = Vec::with_capacity(n);
        for _ in 0..n {
            items.push(self.pop()?);
        }
        items.reverse();
        self.budget.spend(n)?;
        self.stack.push(Value::Tuple(Rc::new(Items(items))));
        Ok(())
    }

    fn memo_get(&mut self, index: u32) -> Result<()> {
        let value = self.memo.get(&index).cloned();
        let value = value
            .ok_or_else(|| corrupt(format!("memo entry {index} is read before it is written")))?;
        self.stack.push(value);
        Ok(())
    }

    fn memo_put(&mut self, index: u32) -> Result<()> {
        let value = self.top()?.clone();
        self.memo.insert(index, value);
        Ok(())
    }

    fn set_items(&mut self, items: Vec<Value>) -> Result<()> {
        if !items.len().is_multiple_of(2) {
            return Err(corrupt("a dict is given an odd number of keys and values"));
        }
        self.budget.spend(items.len())?;
        match self.top()? {
            Value::Dict(dict) => {
                let mut dict = dict.borrow_mut();
                let mut items = items.into_iter();
                while let (Some(k), Some(v)) = (items.next(), items.next()) {
                    dict.0.push((k, v));
                }
                Ok(())
            }
            other => Err(corrupt(format!(
                "items are set on a {}, not a dict",
                other.type_name()
            ))),
        }
    }

    fn append(&mut self, items: Vec<Value>) -> Result<()> {
        self.budget.spend(items.len())?;
        match self.top()? {
            Value::List(list) => {
                list.borrow_mut().0.extend(items);
                Ok(())
            }
            other => Err(corrupt(format!(
                "items are appended to a {}, not a list",
                other.type_name()
            ))),
        }
    }

    fn run(&mut self) -> Result<Value> {
        loop {
            let at = self.pos;
            let opcode = self.u8()?;
            self.created += 1;
            match opcode {
                0x80 => {
                    // PROTO
                    let protocol = self.u8()?;
                    if protocol > 5 {
                        return Err(corrupt(format!(
                            "pickle protocol {protocol} does not exist"
                        )));
                    }
                }
                0x95 => {
                    // FRAME: a length hint only.
                    self.take(8)?;
                }
                b'}' => self.stack.push(Value::Dict(Rc::default())),
                b']' => self.stack.push(Value::List(Rc::default())),
                b')' => self.stack.push(Value::Tuple(Rc::default())),
                b'(' => self.marks.push(self.stack.len()),
                b't' => {
                    let items = self.pop_mark()?;
                    self.budget.spend(items.len())?;
                    self.stack.push(Value::Tuple(Rc::new(Items(items))));
                }
                0x85 => self.tuple(1)?,
                0x86 => self.tuple(2)?,
                0x87 => self.tuple(3)?,
                b'J' => {
                    let v = i32::from_le_bytes(self.array()?);
                    self.stack.push(Value::Int(i64::from(v)));
                }
                b'K' => {
                    let v = self.u8()?;
                    self.stack.push(Value::Int(i64::from(v)));
                }
                b'M' => {
                    let v = u16::from_le_bytes(self.array()?);
                    self.stack.push(Value::Int(i64::from(v)));
                }
                0x8a => {
                    // LONG1: little-endian two's complement of n bytes.
                    let n = usize::from(self.u8()?);
                    let bytes = self.take(n)?;
                    self.stack.push(long_value(bytes));
                }
                b'G' => {
                    let v = f64::from_be_bytes(self.array()?);
                    self.stack.push(Value::Float(v));
                }
                b'X' => {
                    let n = self.u32()? as usize;
                    let text = self.text(n)?;
                    self.stack.push(Value::Str(text));
                }
                0x8c => {
                    let n = usize::from(self.u8()?);
                    let text = self.text(n)?;
                    self.stack.push(Value::Str(text));
                }
                0x8d => {
                    let n = self.u64_len()?;
                    let text = self.text(n)?;
                    self.stack.push(Value::Str(text));
                }
                b'T' => {
                    let n = i32::from_le_bytes(self.array()?);
                    let n = usize::try_from(n)
                        .map_err(|_| corrupt("a string has a negative length"))?;
                    let value = self.py2_string(n)?;
                    self.stack.push(value);
                }
                b'U' => {
                    let n = usize::from(self.u8()?);
                    let value = self.py2_string(n)?;
                    self.stack.push(value);
                }
                b'B' => {
                    let n = self.u32()? as usize;
                    let bytes = self.take(n)?.to_vec();
                    self.stack.push(Value::Bytes(bytes));
                }
                b'C' => {
                    let n = usize::from(self.u8()?);
                    let bytes = self.take(n)?.to_vec();
                    self.stack.push(Value::Bytes(bytes));
                }
                0x8e => {
                    let n = self.u64_len()?;
                    let bytes = self.take(n)?.to_vec();
                    self.stack.push(Value::Bytes(bytes));
                }
                b'N' => self.stack.push(Value::None),
                0x88 => self.stack.push(Value::Bool(true)),
                0x89 => self.stack.push(Value::Bool(false)),
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.stack
                        .push(Value::Global(resolve_global(&module, &name)?));
                }
                0x93 => {
                    // STACK_GLOBAL
                    let name = self.pop()?;
                    let module = self.pop()?;
                    match (module, name) {
                        (Value::Str(module), Value::Str(name)) => self
                            .stack
                            .push(Value::Global(resolve_global(&module, &name)?)),
                        _ => {
                            return Err(corrupt(
                                "STACK_GLOBAL is given something other than two strings",
                            ));
                        }
                    }
                }
                b'R' => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let args = match args {
                        Value::Tuple(args) => args,
                        other => {
                            return Err(corrupt(format!(
                                "call arguments are a {}",
                                other.type_name()
                            )));
                        }
                    };
                    let result = match callable {
                        Value::Global(global) => call(global, &args.0, &mut self.budget)?,
                        other => return Err(corrupt(format!("a {} is called", other.type_name()))),
                    };
                    self.stack.push(result);
                }
                0x81 => {
                    // NEWOBJ: cls.__new__(cls, *args); only OrderedDict is accepted.
                    let _args = self.pop()?;
                    match self.pop()? {
                        Value::Global(Global::OrderedDict) => {
                            self.stack.push(Value::Dict(Rc::default()))
                        }
                        other => {
                            return Err(PickleError::Unsupported(format!(
                                "the checkpoint creates an object from a {} at byte {at}, which is not read here",
                                other.type_name()
                            )));
                        }
                    }
                }
                b'b' => {
                    // BUILD: instance state. An OrderedDict's state (state_dict `_metadata`)
                    // and a tensor's are dropped; nothing else takes state.
                    let _state = self.pop()?;
                    match self.top()? {
                        Value::Dict(_) | Value::Tensor(_) => {}
                        other => {
                            return Err(corrupt(format!(
                                "state is set on a {} at byte {at}",
                                other.type_name()
                            )));
                        }
                    }
                }
                b's' => {
                    let value = self.pop()?;
                    let key = self.pop()?;
                    self.set_items(vec![key, value])?;
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    self.set_items(items)?;
                }
                b'a' => {
                    let value = self.pop()?;
                    self.append(vec![value])?;
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    self.append(items)?;
                }
                b'q' => {
                    let index = u32::from(self.u8()?);
                    self.memo_put(index)?;
                }
                b'r' => {
                    let index = self.u32()?;
                    self.memo_put(index)?;
                }
                0x94 => {
                    let index = u32::try_from(self.memo.len())
                        .map_err(|_| corrupt("the memo overflows"))?;
                    self.memo_put(index)?;
                }
                b'h' => {
                    let index = u32::from(self.u8()?);
                    self.memo_get(index)?;
                }
                b'j' => {
                    let index = self.u32()?;
                    self.memo_get(index)?;
                }
                b'Q' => {
                    let pid = self.pop()?;
                    let storage = Rc::new(storage_from_pid(&pid, &mut self.budget)?);
                    self.storages.push(storage.clone());
                    self.stack.push(Value::Storage(storage));
                }
                b'.' => {
                    let value = self.pop()?;
                    if !self.stack.is_empty() || !self.marks.is_empty() {
                        return Err(corrupt("the pickle stops with values left on its stack"));
                    }
                    return Ok(value);
                }
                other => {
                    return Err(corrupt(format!(
                        "unknown or unsupported pickle opcode 0x{other:02x} at byte {at}"
                    )));
                }
            }
        }
    }
}

/// The value of a LONG1 payload: little-endian two's complement.
fn long_value(bytes: &[u8]) -> Value {
    if bytes.is_empty() {
        return Value::Int(0);
    }
    if bytes.len() > 16 {
        // Larger than any quantity a checkpoint's tensors need; keep only that it is an int.
        return Value::BigInt(i128::MAX);
    }
    let negative = bytes[bytes.len() - 1] & 0x80 != 0;
    let mut buf = if negative { [0xffu8; 16] } else { [0u8; 16] };
    buf[..bytes.len()].copy_from_slice(bytes);
    let v = i128::from_le_bytes(buf);
    match i64::try_from(v) {
        Ok(v) => Value::Int(v),
        Err(_) => Value::BigInt(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_all(data: &[u8]) -> Result<Value> {
        load(data, 0).map(|loaded| loaded.value)
    }

    #[test]
    fn long1_handles_sign_and_width() {
        assert!(matches!(long_value(&[0xff]), Value::Int(-1)));
        assert!(matches!(long_value(&[0x00, 0x80]), Value::Int(-32768)));
        let magic = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];
        assert!(matches!(
            long_value(&magic),
            Value::BigInt(0x1950a86a20f9469cfc6c)
        ));
    }

    #[test]
    fn dict_filled_after_memoisation_is_seen_through_the_memo() {
        // {} BINPUT 0, 'a' 1 SETITEM, BINGET 0 inside a tuple, STOP
        let data = b"\x80\x02}q\x00X\x01\x00\x00\x00aK\x01sh\x00\x86.";
        let value = load_all(data).unwrap();
        let Value::Tuple(items) = value else {
            panic!("expected a tuple")
        };
        let Value::Dict(dict) = &items.0[1] else {
            panic!("expected a dict")
        };
        assert_eq!(dict.borrow().0.len(), 1);
    }

    #[test]
    fn unknown_global_is_named() {
        let data = b"\x80\x02cos\nsystem\nq\x00.";
        let err = load_all(data).unwrap_err().to_string();
        assert!(err.contains("os.system"), "{err}");
    }

    #[test]
    fn unknown_opcode_is_named_with_position() {
        let err = load_all(b"\x80\x02\xff.").unwrap_err().to_string();
        assert!(err.contains("0xff") && err.contains("byte 2"), "{err}");
    }

    #[test]
    fn end_of_data_is_truncation() {
        assert!(matches!(
            load_all(b"\x80\x02X\x05\x00\x00\x00ab"),
            Err(PickleError::Truncated(_))
        ));
        assert!(matches!(
            load_all(b"\x80\x02}"),
            Err(PickleError::Truncated(_))
        ));
    }
}
