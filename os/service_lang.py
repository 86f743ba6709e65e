"""The service language front end: checks that Python source stays inside the subset a tile can run.

`check(source, filename)` parses a service module and returns a `Program`: its constants, the service's
fields with their memory layout, and every function with its locals' types. Anything outside the subset raises
`CompileError` with `file:line:column`, the construct, and what to write instead, so the code generator
(`tessera.os.codegen`) and the runner (`tessera.os.service_runner`) only ever see programs they can honour.
docs/services.md is the language reference.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

from tessera.os import service_int32 as i32
from tessera.os.codegen_support import HOST_NODE, HOST_RESERVED_TAGS
from tessera.os.manifest import HOST_NAME
from tessera.os.service_api import API_NAMES

#: Most payload words one message carries (the mailbox's N, docs/network.md).
MAX_WORDS = 4
#: Most arguments a helper function takes (they travel in a0..a7).
MAX_ARGS = 8
#: Module the API is imported from.
API_MODULE = "tessera.os.service_api"
#: Methods the runtime calls once when the tile starts: `init`, or `upgrade` instead when the host has just handed
#: the previous build's state over (`tessera reload`); both optional.
STARTS = ("init", "upgrade")

INT = "int"
MSG = "msg"

#: Builtins a service may call, with their argument counts.
BUILTINS = {"len": 1, "abs": 1, "min": 2, "max": 2}
#: API calls that give a value, and their result type.
API_VALUE = {"receive": MSG, "call": MSG, "now": INT, "me": INT, "u32lt": INT, "u32le": INT, "u32gt": INT,
             "u32ge": INT, "u32shr": INT}
#: API calls whose payload words are their (remaining) positional arguments.
API_SENDERS = {"send": 1, "send_to": 1, "reply": 0, "call": 1, "log": 0}
API_FIXED_ARGS = {"receive": 0, "now": 0, "me": 0, "sleep": 1, "snapshot": 0, "u32lt": 2, "u32le": 2,
                  "u32gt": 2, "u32ge": 2, "u32shr": 2}
API_KEYWORDS = {"send": {"tag"}, "send_to": {"tag"}, "call": {"tag", "timeout"}, "receive": {"timeout"}}

#: Refused statement and expression kinds: (what it is, what to write instead).
REFUSED: dict[type, tuple[str, str]] = {
    ast.Try: ("try/except", "check values with `if` and use `assert` for conditions that must hold"),
    ast.Raise: ("raise", "use `assert condition` (a failed assert stops the tile with cause ASSERTION)"),
    ast.With: ("with", "call the operations directly"),
    ast.Lambda: ("lambda", "define a helper function with `def`"),
    ast.GeneratorExp: ("a generator expression", "write a `for` loop"),
    ast.ListComp: ("a list comprehension", "use an `Array[int, N]` field and a `for` loop"),
    ast.SetComp: ("a set comprehension", "use an `Array[int, N]` field and a `for` loop"),
    ast.DictComp: ("a dict comprehension", "use an `Array[int, N]` field and a `for` loop"),
    ast.Yield: ("a generator (yield)", "keep state in service fields and handle one message at a time"),
    ast.YieldFrom: ("a generator (yield from)", "keep state in service fields"),
    ast.Await: ("await", "use receive() or call(), which wait for the next message"),
    ast.AsyncFunctionDef: ("an async function", "use a plain `def`; receive() waits for messages"),
    ast.AsyncFor: ("async for", "use `for i in range(...)`"),
    ast.AsyncWith: ("async with", "call the operations directly"),
    ast.Global: ("global", "keep mutable state in a service field (`self.name`)"),
    ast.Nonlocal: ("nonlocal", "pass values as arguments and return results"),
    ast.Import: ("import", f"import only the service API: `from {API_MODULE} import ...`"),
    ast.Delete: ("del", "assign a value instead"),
    ast.List: ("a list", "use an `Array[int, N]` field"),
    ast.Dict: ("a dict", "use `Array[int, N]` fields (keys and values)"),
    ast.Set: ("a set", "use an `Array[int, N]` field"),
    ast.JoinedStr: ("an f-string", "log numbers with log(...)"),
    ast.Starred: ("*-unpacking", "pass each word as its own argument"),
    ast.Slice: ("a slice", "index one element at a time in a loop"),
    ast.NamedExpr: ("the := operator", "assign in a statement of its own"),
    ast.Match: ("match", "use if/elif/else"),
    ast.ClassDef: ("a class other than the service", "use helper functions and service fields"),
    ast.FunctionDef: ("a nested function (closure)", "define the helper at module level or as a method"),
}


class CompileError(Exception):
    """A service outside the subset: `file:line:column: message`."""

    def __init__(self, filename: str, node: ast.AST | None, message: str) -> None:
        self.filename = filename
        self.line = getattr(node, "lineno", 1)
        self.column = getattr(node, "col_offset", 0) + 1
        self.message = message
        super().__init__(f"{filename}:{self.line}:{self.column}: {message}")


@dataclass
class Field:
    """A service field: an int, an Array[int, N] or Bytes[N], with its initial value and byte offset."""

    name: str
    kind: str  # "int", "array" or "bytes"
    size: int  # elements (1 for an int)
    initial: list[int]
    offset: int = 0

    @property
    def byte_size(self) -> int:
        return (self.size + 3) & ~3 if self.kind == "bytes" else 4 * self.size


@dataclass
class Function:
    """A module-level helper or a method, checked; `label` is its assembly name."""

    name: str
    label: str
    is_method: bool
    params: list[str]
    param_types: list[str]
    node: ast.FunctionDef
    returns_value: bool
    locals: dict[str, str] = field(default_factory=dict)  # every local (params included) -> INT or MSG
    maybe_none: set[str] = field(default_factory=set)  # message locals assigned from a timeout receive/call
    callees: set[str] = field(default_factory=set)  # labels of the functions it calls

    @property
    def body(self) -> list[ast.stmt]:
        return self.node.body


@dataclass
class Program:
    """A checked service module."""

    filename: str
    source: str
    service: str
    constants: dict[str, int]
    fields: dict[str, Field]
    functions: dict[str, Function]  # by label
    module_functions: dict[str, str]  # Python name -> label
    methods: dict[str, str]  # method name -> label
    api_names: set[str]
    destinations: set[str]  # service names this service sends to

    @property
    def data_bytes(self) -> int:
        return sum(f.byte_size for f in self.fields.values())


def function_label(name: str, is_method: bool) -> str:
    return f"{'m' if is_method else 'f'}_{name}"


def check(source: str, filename: str = "<service>") -> Program:
    """Parse and check a service module; raise CompileError for anything outside the subset."""
    try:
        tree = ast.parse(source, filename)
    except SyntaxError as error:
        node = ast.Pass(lineno=error.lineno or 1, col_offset=(error.offset or 1) - 1)
        raise CompileError(filename, node, f"syntax error: {error.msg}") from None
    return _ModuleChecker(filename, source).check(tree)


class _ModuleChecker:
    def __init__(self, filename: str, source: str) -> None:
        self.filename = filename
        self.source = source
        self.constants: dict[str, int] = {}
        self.fields: dict[str, Field] = {}
        self.functions: dict[str, Function] = {}
        self.module_functions: dict[str, str] = {}
        self.methods: dict[str, str] = {}
        self.api_names: set[str] = set()
        self.destinations: set[str] = set()

    def error(self, node: ast.AST | None, message: str) -> CompileError:
        return CompileError(self.filename, node, message)

    def refuse(self, node: ast.AST) -> CompileError:
        what, instead = REFUSED.get(type(node), (type(node).__name__, "see docs/services.md for the subset"))
        return self.error(node, f"{what} is not supported in a service: {instead}")

    # -- module level ------------------------------------------------------------------------------

    def check(self, tree: ast.Module) -> Program:
        service: ast.ClassDef | None = None
        defs: list[tuple[ast.FunctionDef, bool]] = []
        for index, stmt in enumerate(tree.body):
            if index == 0 and _is_docstring(stmt):
                continue
            if isinstance(stmt, ast.ImportFrom):
                self.check_import(stmt)
            elif isinstance(stmt, (ast.Assign, ast.AnnAssign)):
                self.check_constant(stmt)
            elif isinstance(stmt, ast.FunctionDef):
                self.declare_function(stmt, False)
                defs.append((stmt, False))
            elif isinstance(stmt, ast.ClassDef):
                if service is not None or not _is_service_class(stmt):
                    raise self.error(stmt, "only one class, the service (`class Name(Service):`), is allowed: "
                                           "use helper functions and service fields")
                if "Service" not in self.api_names:
                    raise self.error(stmt, f"import the base class first: `from {API_MODULE} import Service`")
                service = stmt
                defs.extend((method, True) for method in self.check_service_body(stmt))
            elif isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and isinstance(
                    stmt.value.value, str):
                continue
            else:
                raise self.refuse_module_statement(stmt)
        if service is None:
            raise self.error(tree.body[0] if tree.body else None,
                             "no service class: define `class Name(Service):` with a `handle(self, msg)` method")
        if "handle" not in self.methods:
            raise self.error(service, f"service {service.name} has no `def handle(self, msg):`")
        self.layout_fields()
        for node, is_method in defs:
            _FunctionChecker(self, self.functions[function_label(node.name, is_method)]).check()
        return Program(self.filename, self.source, service.name, self.constants, self.fields, self.functions,
                       self.module_functions, self.methods, self.api_names, self.destinations)

    def refuse_module_statement(self, stmt: ast.stmt) -> CompileError:
        if type(stmt) in REFUSED:
            return self.refuse(stmt)
        return self.error(stmt, "only constants, functions, imports and the service class may appear at module "
                                "level: move statements into init() or handle()")

    def check_import(self, stmt: ast.ImportFrom) -> None:
        allowed = {API_MODULE: API_NAMES | {"Service", "Array", "Bytes", "Message"}, "typing": {"Final"}}
        if stmt.module not in allowed or stmt.level:
            raise self.error(stmt, f"only the service API can be imported (`from {API_MODULE} import ...`): "
                                   "a tile has no other libraries")
        for alias in stmt.names:
            if alias.name not in allowed[stmt.module]:
                raise self.error(alias, f"{stmt.module} has no {alias.name!r} for services")
            if alias.asname is not None and alias.asname != alias.name:
                raise self.error(alias, f"import {alias.name} under its own name")
            self.api_names.add(alias.name)

    def check_constant(self, stmt: ast.Assign | ast.AnnAssign) -> None:
        target = stmt.targets[0] if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 else getattr(
            stmt, "target", None)
        if not isinstance(target, ast.Name) or stmt.value is None:
            raise self.error(stmt, "module-level assignments define constants: write `NAME = <integer expression>`"
                                   " (mutable state belongs in service fields)")
        if isinstance(stmt, ast.AnnAssign) and not _is_constant_annotation(stmt.annotation):
            raise self.error(stmt.annotation, "a constant's annotation must be `Final`, `Final[int]` or `int`")
        self.declare_name(target, target.id)
        self.constants[target.id] = self.const_eval(stmt.value)

    def declare_name(self, node: ast.AST, name: str) -> None:
        if name in self.constants or name in self.module_functions:
            raise self.error(node, f"{name!r} is already defined: constants and functions are defined once")
        if name in self.api_names or name in BUILTINS or name in ("self", "range", "True", "False", "None"):
            raise self.error(node, f"{name!r} is a name the language reserves: choose another name")

    def const_eval(self, node: ast.expr) -> int:
        """Value of a constant integer expression (literals, other constants, operators)."""
        if isinstance(node, ast.Constant) and isinstance(node.value, (bool, int)):
            return self.literal(node)
        if isinstance(node, ast.Name) and node.id in self.constants:
            return self.constants[node.id]
        if isinstance(node, ast.UnaryOp) and type(node.op).__name__ in i32.UNARY:
            return i32.UNARY[type(node.op).__name__](self.const_eval(node.operand))
        if isinstance(node, ast.BinOp) and type(node.op).__name__ in i32.BINARY:
            left, right = self.const_eval(node.left), self.const_eval(node.right)
            if isinstance(node.op, (ast.FloorDiv, ast.Mod)) and right == 0:
                raise self.error(node, "division by zero in a constant expression")
            return i32.BINARY[type(node.op).__name__](left, right)
        raise self.error(node, "not a constant integer expression: use literals, other constants and operators")

    def constant_or_none(self, node: ast.expr) -> int | None:
        """The value of a constant integer expression, or None when `node` is not one."""
        try:
            return self.const_eval(node)
        except CompileError:
            return None

    def literal(self, node: ast.Constant) -> int:
        value = int(node.value)
        if not i32.INT_MIN <= value <= i32.MASK32:
            raise self.error(node, f"integer literal {value} does not fit 32 bits (-2**31 .. 2**32-1)")
        return i32.wrap(value)

    def declare_function(self, node: ast.FunctionDef, is_method: bool) -> None:
        if not is_method:
            self.declare_name(node, node.name)
        elif node.name in self.methods:
            raise self.error(node, f"method {node.name!r} is defined twice")
        if node.decorator_list:
            raise self.error(node.decorator_list[0], "decorators are not supported: call helpers explicitly")
        args = node.args
        if args.vararg or args.kwarg:
            raise self.error(args.vararg or args.kwarg, "*args and **kwargs are not supported: "
                                                        "give every parameter a name")
        if args.kwonlyargs:
            raise self.error(args.kwonlyargs[0], "keyword-only parameters are not supported: "
                                                 "use plain positional parameters")
        if args.defaults:
            raise self.error(args.defaults[0], "default parameter values are not supported: "
                                               "pass every argument at the call")
        params = args.posonlyargs + args.args
        if is_method:
            if not params or params[0].arg != "self":
                raise self.error(node, f"method {node.name!r} must take `self` first")
            params = params[1:]
        elif params and params[0].arg == "self":
            raise self.error(params[0], "module-level functions have no `self`: make it a method of the service")
        if len(params) > MAX_ARGS:
            raise self.error(node, f"{node.name} takes {len(params)} parameters; at most {MAX_ARGS} are supported")
        types = [self.param_type(node, p) for p in params]
        if is_method and node.name == "handle" and (len(params) != 1):
            raise self.error(node, "handle must be `def handle(self, msg):`")
        if is_method and node.name in STARTS and params:
            raise self.error(node, f"{node.name} must be `def {node.name}(self):`")
        if is_method and node.name == "handle":
            types = [MSG]
        returns = any(isinstance(n, ast.Return) and n.value is not None for n in _walk_function(node))
        if is_method and node.name in (*STARTS, "handle") and returns:
            raise self.error(node, f"{node.name} returns nothing: reply(...) sends results")
        label = function_label(node.name, is_method)
        (self.methods if is_method else self.module_functions)[node.name] = label
        self.functions[label] = Function(node.name, label, is_method, [p.arg for p in params], types, node, returns)

    def param_type(self, function: ast.FunctionDef, param: ast.arg) -> str:
        annotation = param.annotation
        if annotation is None or (isinstance(annotation, ast.Name) and annotation.id in ("int", "bool")):
            return INT
        if isinstance(annotation, ast.Name) and annotation.id == "Message":
            return MSG
        raise self.error(annotation, f"parameter {param.arg!r} of {function.name}: types are `int` or `Message`")

    def check_service_body(self, node: ast.ClassDef) -> list[ast.FunctionDef]:
        methods = []
        for index, stmt in enumerate(node.body):
            if index == 0 and _is_docstring(stmt):
                continue
            if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                self.check_field(stmt, stmt.target.id)
            elif isinstance(stmt, ast.FunctionDef):
                self.declare_function(stmt, True)
                methods.append(stmt)
            elif isinstance(stmt, ast.Assign):
                raise self.error(stmt, "declare a field with its type: `name: int = 0`, `name: Array[int, 8]` "
                                       "or `name: Bytes[16] = b\"...\"`")
            elif isinstance(stmt, ast.Pass):
                continue
            else:
                raise self.refuse_module_statement(stmt)
        return methods

    def check_field(self, stmt: ast.AnnAssign, name: str) -> None:
        if name in self.fields:
            raise self.error(stmt, f"field {name!r} is declared twice")
        kind, size = self.field_type(stmt.annotation)
        value = stmt.value
        if kind == "int":
            initial = [self.const_eval(value)] if value is not None else [0]
        elif kind == "array":
            if value is None:
                initial = []
            elif isinstance(value, (ast.List, ast.Tuple)) and len(value.elts) <= size:
                initial = [self.const_eval(v) for v in value.elts]
            else:
                raise self.error(value, f"initialise Array[int, {size}] with a list of at most {size} constants")
        else:
            if value is None:
                initial = []
            elif isinstance(value, ast.Constant) and isinstance(value.value, bytes) and len(value.value) <= size:
                initial = list(value.value)
            else:
                raise self.error(value, f"initialise Bytes[{size}] with a bytes literal of at most {size} bytes")
        self.fields[name] = Field(name, kind, size, initial + [0] * (size - len(initial)))

    def field_type(self, annotation: ast.expr) -> tuple[str, int]:
        if isinstance(annotation, ast.Name) and annotation.id in ("int", "bool"):
            return "int", 1
        if isinstance(annotation, ast.Subscript) and isinstance(annotation.value, ast.Name):
            kind = annotation.value.id
            if kind == "Array" and isinstance(annotation.slice, ast.Tuple) and len(annotation.slice.elts) == 2:
                element, size_node = annotation.slice.elts
                if isinstance(element, ast.Name) and element.id == "int":
                    return "array", self.field_size(size_node)
            if kind == "Bytes":
                return "bytes", self.field_size(annotation.slice)
        raise self.error(annotation, "field types are `int`, `Array[int, N]` and `Bytes[N]` (floats, strings, "
                                     "lists and dicts are not supported)")

    def field_size(self, node: ast.expr) -> int:
        size = self.const_eval(node)
        if not 1 <= size <= 4096:
            raise self.error(node, f"size {size} must be between 1 and 4096")
        return size

    def layout_fields(self) -> None:
        """Give each field its byte offset in the data area: words first, then byte strings."""
        offset = 0
        for f in sorted(self.fields.values(), key=lambda f: f.kind == "bytes"):
            f.offset = offset
            offset += f.byte_size


def _is_docstring(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str)


def _is_service_class(node: ast.ClassDef) -> bool:
    return (len(node.bases) == 1 and isinstance(node.bases[0], ast.Name) and node.bases[0].id == "Service"
            and not node.keywords and not node.decorator_list)


def _is_constant_annotation(node: ast.expr) -> bool:
    if isinstance(node, ast.Name):
        return node.id in ("Final", "int")
    return (isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id == "Final"
            and isinstance(node.slice, ast.Name) and node.slice.id == "int")


def _walk_function(node: ast.FunctionDef):  # type: ignore[no-untyped-def]
    """Nodes of a function body, not descending into nested definitions (which the checker refuses)."""
    stack: list[ast.AST] = list(node.body)
    while stack:
        current = stack.pop()
        yield current
        if not isinstance(current, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            stack.extend(ast.iter_child_nodes(current))


class _FunctionChecker:
    """Checks one function body: statements, expressions, types and definite assignment."""

    def __init__(self, module: _ModuleChecker, function: Function) -> None:
        self.module = module
        self.function = function
        self.loop_depth = 0

    def error(self, node: ast.AST, message: str) -> CompileError:
        return self.module.error(node, message)

    def check(self) -> None:
        f = self.function
        f.locals = dict(zip(f.params, f.param_types))
        self.collect_locals()
        assigned, terminates = self.block(f.body, set(f.params))
        if f.returns_value and not terminates:
            raise self.error(f.node, f"{f.name} may end without returning a value: end every path with `return`")

    # -- locals and their types ----------------------------------------------------------------------

    def collect_locals(self) -> None:
        for node in _walk_function(self.function.node):
            if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    names = target.elts if isinstance(target, ast.Tuple) else [target]
                    for name in names:
                        if isinstance(name, ast.Name):
                            kind = MSG if _is_message_source(node.value) and len(names) == 1 else INT
                            self.declare_local(name, kind)
                            if kind == MSG and _has_timeout(node.value):
                                self.function.maybe_none.add(name.id)
            elif isinstance(node, ast.For) and isinstance(node.target, ast.Name):
                self.declare_local(node.target, INT)

    def declare_local(self, node: ast.Name, kind: str) -> None:
        m = self.module
        name = node.id
        if name in m.constants:
            raise self.error(node, f"{name!r} is a constant: constants cannot be assigned")
        if name in m.module_functions or name in m.api_names or name in BUILTINS or name in ("self", "range"):
            raise self.error(node, f"{name!r} names a function: choose another variable name")
        known = self.function.locals.get(name)
        if known is not None and known != kind:
            raise self.error(node, f"{name!r} holds a message in one place and an integer in another: "
                                   "use two variables")
        if known == MSG and name in self.function.params:
            raise self.error(node, f"parameter {name!r} is a message of the caller: receive into a new variable")
        self.function.locals[name] = kind

    # -- statements ----------------------------------------------------------------------------------

    def block(self, stmts: list[ast.stmt], assigned: set[str]) -> tuple[set[str], bool]:
        """Check statements; return the names definitely assigned after them and whether control leaves."""
        assigned = set(assigned)
        terminated = False
        for stmt in stmts:
            out, ends = self.statement(stmt, assigned if not terminated else set(self.function.locals))
            if not terminated:
                assigned, terminated = out, ends
        return assigned, terminated

    def statement(self, stmt: ast.stmt, assigned: set[str]) -> tuple[set[str], bool]:
        if isinstance(stmt, ast.Assign):
            return self.assign(stmt, assigned), False
        if isinstance(stmt, ast.AnnAssign):
            if not isinstance(stmt.target, ast.Name) or stmt.value is None:
                raise self.error(stmt, "annotate only local variables with a value: `x: int = 0`")
            if not (isinstance(stmt.annotation, ast.Name) and stmt.annotation.id in ("int", "bool")):
                raise self.error(stmt.annotation, "local variables are `int`")
            self.int_expr(stmt.value, assigned)
            return assigned | {stmt.target.id}, False
        if isinstance(stmt, ast.AugAssign):
            self.binop_allowed(stmt.op, stmt)
            self.int_expr(stmt.value, assigned)
            self.target(stmt.target, assigned, augmented=True)
            return assigned, False
        if isinstance(stmt, ast.If):
            self.condition(stmt.test, assigned)
            then, then_ends = self.block(stmt.body, assigned)
            other, other_ends = self.block(stmt.orelse, assigned)
            if then_ends and other_ends:
                return assigned, True
            return (other if then_ends else then if other_ends else then & other), False
        if isinstance(stmt, ast.While):
            return self.while_loop(stmt, assigned)
        if isinstance(stmt, ast.For):
            return self.for_loop(stmt, assigned)
        if isinstance(stmt, (ast.Break, ast.Continue)):
            if not self.loop_depth:
                raise self.error(stmt, f"{type(stmt).__name__.lower()} outside a loop")
            return assigned, True
        if isinstance(stmt, ast.Return):
            return self.return_statement(stmt, assigned), True
        if isinstance(stmt, ast.Expr):
            if _is_docstring(stmt):
                return assigned, False
            if type(stmt.value) in REFUSED:
                raise self.module.refuse(stmt.value)
            if not isinstance(stmt.value, ast.Call):
                raise self.error(stmt, "an expression statement does nothing: only calls may stand alone")
            self.call(stmt.value, assigned, as_value=False)
            return assigned, False
        if isinstance(stmt, ast.Assert):
            self.condition(stmt.test, assigned)
            if stmt.msg is not None and not (isinstance(stmt.msg, ast.Constant) and isinstance(stmt.msg.value, str)):
                raise self.error(stmt.msg, "an assert message must be a string literal")
            return assigned, False
        if isinstance(stmt, ast.Pass):
            return assigned, False
        if type(stmt) in REFUSED:
            raise self.module.refuse(stmt)
        raise self.error(stmt, f"{type(stmt).__name__} statements are not supported in a service")

    def assign(self, stmt: ast.Assign, assigned: set[str]) -> set[str]:
        if len(stmt.targets) != 1:
            raise self.error(stmt, "chained assignment (`a = b = 0`) is not supported: assign one at a time")
        target = stmt.targets[0]
        if isinstance(target, ast.Tuple):
            if not isinstance(stmt.value, ast.Tuple) or len(stmt.value.elts) != len(target.elts):
                raise self.error(stmt, "tuple assignment needs a tuple of the same length on the right: "
                                       "`a, b = b, a`")
            for value in stmt.value.elts:
                self.int_expr(value, assigned)
            for element in target.elts:
                self.target(element, assigned, augmented=False)
            return assigned | {e.id for e in target.elts if isinstance(e, ast.Name)}
        if isinstance(target, ast.Name) and self.function.locals.get(target.id) == MSG:
            if not _is_message_source(stmt.value):
                raise self.error(stmt.value, "a message variable is assigned only from receive(...) or call(...)")
            self.call(stmt.value, assigned, as_value=True)  # type: ignore[arg-type]
            return assigned | {target.id}
        self.int_expr(stmt.value, assigned)
        self.target(target, assigned, augmented=False)
        return assigned | ({target.id} if isinstance(target, ast.Name) else set())

    def target(self, target: ast.expr, assigned: set[str], augmented: bool) -> None:
        if isinstance(target, ast.Name):
            if self.function.locals.get(target.id) != INT:
                raise self.error(target, f"{target.id!r} is not an integer variable")
            if augmented and target.id not in assigned:
                raise self.error(target, f"local variable {target.id!r} may be used before it is assigned")
            return
        if isinstance(target, ast.Attribute):
            f = self.self_field(target)
            if f.kind != "int":
                raise self.error(target, f"field {f.name!r} is an array: assign its elements (`self.{f.name}[i] = ...`)")
            return
        if isinstance(target, ast.Subscript):
            if isinstance(target.value, ast.Name) and self.function.locals.get(target.value.id) == MSG:
                raise self.error(target, "messages are read-only: copy the words you need into variables or fields")
            self.subscript(target, assigned)
            return
        if type(target) in REFUSED:
            raise self.module.refuse(target)
        raise self.error(target, "assign to a local variable, a field (`self.x`) or an element (`self.a[i]`)")

    def while_loop(self, stmt: ast.While, assigned: set[str]) -> tuple[set[str], bool]:
        if stmt.orelse:
            raise self.error(stmt.orelse[0], "a loop `else` clause is not supported: use a flag variable")
        forever = isinstance(stmt.test, ast.Constant) and bool(stmt.test.value) and isinstance(
            stmt.test.value, (bool, int))
        self.condition(stmt.test, assigned)
        self.loop_depth += 1
        self.block(stmt.body, assigned)
        self.loop_depth -= 1
        return assigned, forever and not _breaks_out(stmt.body)

    def for_loop(self, stmt: ast.For, assigned: set[str]) -> tuple[set[str], bool]:
        if stmt.orelse:
            raise self.error(stmt.orelse[0], "a loop `else` clause is not supported: use a flag variable")
        if not isinstance(stmt.target, ast.Name):
            raise self.error(stmt.target, "the loop variable must be a plain name: `for i in range(n):`")
        it = stmt.iter
        if not (isinstance(it, ast.Call) and isinstance(it.func, ast.Name) and it.func.id == "range"):
            raise self.error(it, "`for` loops run over range(...) only: iterate over an array with "
                                 "`for i in range(len(self.a)):`")
        if it.keywords or not 1 <= len(it.args) <= 3:
            raise self.error(it, "range takes 1 to 3 positional arguments")
        for arg in it.args:
            self.int_expr(arg, assigned)
        if len(it.args) == 3:
            step = self.module.const_eval(it.args[2])
            if step == 0 or not -2047 <= step <= 2047:
                raise self.error(it.args[2], f"range step {step}: a constant step in -2047..2047, not 0, is supported")
        self.loop_depth += 1
        self.block(stmt.body, assigned | {stmt.target.id})
        self.loop_depth -= 1
        return assigned, False

    def return_statement(self, stmt: ast.Return, assigned: set[str]) -> set[str]:
        if stmt.value is None:
            if self.function.returns_value:
                raise self.error(stmt, f"{self.function.name} returns a value elsewhere: return one here too")
        else:
            self.int_expr(stmt.value, assigned)
        return assigned

    # -- expressions ---------------------------------------------------------------------------------

    def condition(self, node: ast.expr, assigned: set[str]) -> None:
        if self.expr(node, assigned) != INT:
            raise self.error(node, "a message is not a condition: test `m is not None`")

    def int_expr(self, node: ast.expr, assigned: set[str]) -> None:
        if self.expr(node, assigned) != INT:
            raise self.error(node, "a message is not a number: use its words (`msg[i]`), `msg.sender` or `msg.tag`")

    def expr(self, node: ast.expr, assigned: set[str]) -> str:
        if isinstance(node, ast.Constant):
            if isinstance(node.value, (bool, int)):
                self.module.literal(node)
                return INT
            if isinstance(node.value, float):
                raise self.error(node, "floating point is not supported: tiles compute with 32-bit integers "
                                       "(use fixed point, e.g. values scaled by 1 << 16)")
            if isinstance(node.value, str):
                raise self.error(node, "strings are not supported here: use Bytes[N] fields; service names "
                                       "appear only as the first argument of send(...) and call(...)")
            raise self.error(node, f"{type(node.value).__name__} constants are not supported here")
        if isinstance(node, ast.Name):
            return self.name(node, assigned)
        if isinstance(node, ast.BinOp):
            self.binop_allowed(node.op, node)
            self.int_expr(node.left, assigned)
            self.int_expr(node.right, assigned)
            return INT
        if isinstance(node, ast.UnaryOp):
            self.int_expr(node.operand, assigned)
            return INT
        if isinstance(node, ast.BoolOp):
            for value in node.values:
                self.condition(value, assigned)
            return INT
        if isinstance(node, ast.Compare):
            return self.compare(node, assigned)
        if isinstance(node, ast.IfExp):
            self.condition(node.test, assigned)
            self.int_expr(node.body, assigned)
            self.int_expr(node.orelse, assigned)
            return INT
        if isinstance(node, ast.Call):
            return self.call(node, assigned, as_value=True)
        if isinstance(node, ast.Attribute):
            return self.attribute(node, assigned)
        if isinstance(node, ast.Subscript):
            self.subscript(node, assigned)
            return INT
        if isinstance(node, ast.Tuple):
            raise self.error(node, "tuples exist only in `a, b = x, y`: return one value, or store results "
                                   "in fields")
        if type(node) in REFUSED:
            raise self.module.refuse(node)
        raise self.error(node, f"{type(node).__name__} expressions are not supported in a service")

    def binop_allowed(self, op: ast.operator, node: ast.AST) -> None:
        if isinstance(op, ast.Div):
            raise self.error(node, "`/` gives a float: use `//` (floor division) on integers")
        if isinstance(op, ast.Pow):
            raise self.error(node, "`**` is not supported: multiply in a loop or a helper function")
        if isinstance(op, ast.MatMult):
            raise self.error(node, "`@` is not supported")

    def name(self, node: ast.Name, assigned: set[str]) -> str:
        name = node.id
        if name in self.function.locals:
            if name not in assigned:
                raise self.error(node, f"local variable {name!r} may be used before it is assigned: "
                                       "give it a value first")
            return self.function.locals[name]
        if name in self.module.constants or name in ("True", "False"):
            return INT
        if name == "self":
            raise self.error(node, "`self` is used only as `self.field` or `self.method(...)`")
        if name == "None":
            raise self.error(node, "None appears only in `m is None` / `m is not None` for a message")
        raise self.error(node, f"unknown name {name!r}" + (
            ": service fields are written `self.name`" if name in self.module.fields else ""))

    def compare(self, node: ast.Compare, assigned: set[str]) -> str:
        if len(node.ops) == 1 and isinstance(node.ops[0], (ast.Is, ast.IsNot)):
            left, right = node.left, node.comparators[0]
            if not (isinstance(right, ast.Constant) and right.value is None and isinstance(left, ast.Name)
                    and self.function.locals.get(left.id) == MSG):
                raise self.error(node, "`is` / `is not` compare a message variable with None only: "
                                       "compare numbers with == and !=")
            self.name(left, assigned)
            return INT
        for op in node.ops:
            if isinstance(op, (ast.In, ast.NotIn, ast.Is, ast.IsNot)):
                raise self.error(node, "`in` and `is` are not supported on integers: compare with == / != "
                                       "(search arrays with a loop)")
        self.int_expr(node.left, assigned)
        for comparator in node.comparators:
            self.int_expr(comparator, assigned)
        return INT

    def self_field(self, node: ast.Attribute) -> Field:
        if not (isinstance(node.value, ast.Name) and node.value.id == "self"):
            raise self.error(node, "attributes are `self.field`, `msg.sender` and `msg.tag`")
        if not self.function.is_method:
            raise self.error(node, "module-level functions have no `self`: make it a method of the service")
        f = self.module.fields.get(node.attr)
        if f is None:
            raise self.error(node, f"the service has no field {node.attr!r}: declare `{node.attr}: int = 0` in "
                                   "the class")
        return f

    def attribute(self, node: ast.Attribute, assigned: set[str]) -> str:
        if isinstance(node.value, ast.Name) and self.function.locals.get(node.value.id) == MSG:
            if node.attr not in ("sender", "tag"):
                raise self.error(node, "a message has `.sender`, `.tag`, `msg[i]` and `len(msg)`")
            self.name(node.value, assigned)
            return INT
        f = self.self_field(node)
        if f.kind != "int":
            raise self.error(node, f"field {f.name!r} is an array: use `self.{f.name}[i]` or "
                                   f"`len(self.{f.name})`")
        return INT

    def subscript(self, node: ast.Subscript, assigned: set[str]) -> None:
        if isinstance(node.slice, ast.Slice):
            raise self.module.refuse(node.slice)
        value = node.value
        if isinstance(value, ast.Name) and self.function.locals.get(value.id) == MSG:
            self.name(value, assigned)
        elif isinstance(value, ast.Attribute):
            f = self.self_field(value)
            if f.kind == "int":
                raise self.error(node, f"field {f.name!r} is an int, not an array")
            if isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, int):
                index = node.slice.value
                if not 0 <= index < f.size:
                    raise self.error(node.slice, f"index {index} is outside {f.name} (0 .. {f.size - 1}); "
                                                 "negative indices are not supported")
        else:
            raise self.error(node, "only arrays, byte strings (`self.a[i]`) and messages (`msg[i]`) are indexed")
        self.int_expr(node.slice, assigned)

    def call(self, node: ast.Call, assigned: set[str], as_value: bool) -> str:
        func = node.func
        if isinstance(func, ast.Attribute):
            if not (isinstance(func.value, ast.Name) and func.value.id == "self" and func.attr in self.module.methods):
                raise self.error(node, "only service methods (`self.helper(...)`) and module-level functions "
                                       "can be called")
            if not self.function.is_method:
                raise self.error(node, "module-level functions have no `self`: make it a method of the service")
            return self.user_call(node, self.module.methods[func.attr], assigned, as_value)
        if not isinstance(func, ast.Name):
            raise self.error(node, "call a function by its name")
        name = func.id
        if name in self.module.module_functions:
            return self.user_call(node, self.module.module_functions[name], assigned, as_value)
        if name in BUILTINS:
            return self.builtin_call(node, name, assigned)
        if name in self.module.api_names and name in API_VALUE | API_SENDERS | API_FIXED_ARGS:
            return self.api_call(node, name, assigned, as_value)
        if name in API_NAMES:
            raise self.error(node, f"{name} is not imported: `from {API_MODULE} import {name}`")
        if name == "print":
            raise self.error(node, "print is not available on a tile: use log(...) to send numbers to the host")
        raise self.error(node, f"unknown function {name!r}: define it at module level or as a method")

    def no_keywords(self, node: ast.Call, what: str) -> None:
        if node.keywords:
            raise self.error(node.keywords[0], f"{what} takes no keyword arguments")

    def user_call(self, node: ast.Call, label: str, assigned: set[str], as_value: bool) -> str:
        callee = self.module.functions[label]
        self.no_keywords(node, callee.name)
        if len(node.args) != len(callee.params):
            raise self.error(node, f"{callee.name} takes {len(callee.params)} arguments, not {len(node.args)}")
        if callee.name in (*STARTS, "handle") and callee.is_method:
            raise self.error(node, f"{callee.name} is called by the runtime, not by the service")
        for arg, kind in zip(node.args, callee.param_types):
            if kind == MSG:
                if not (isinstance(arg, ast.Name) and self.function.locals.get(arg.id) == MSG):
                    raise self.error(arg, f"{callee.name} expects a message variable here")
                self.name(arg, assigned)
            else:
                self.int_expr(arg, assigned)
        if as_value and not callee.returns_value:
            raise self.error(node, f"{callee.name} returns nothing: it cannot be used as a value")
        self.function.callees.add(label)
        return INT

    def builtin_call(self, node: ast.Call, name: str, assigned: set[str]) -> str:
        self.no_keywords(node, name)
        if len(node.args) != BUILTINS[name]:
            raise self.error(node, f"{name} takes {BUILTINS[name]} argument(s) here")
        if name == "len":
            arg = node.args[0]
            if isinstance(arg, ast.Name) and self.function.locals.get(arg.id) == MSG:
                self.name(arg, assigned)
            elif isinstance(arg, ast.Attribute):
                if self.self_field(arg).kind == "int":
                    raise self.error(arg, "len() needs an array, a byte string or a message")
            else:
                raise self.error(arg, "len() needs an array field, a byte string field or a message")
            return INT
        for arg in node.args:
            self.int_expr(arg, assigned)
        return INT

    def api_call(self, node: ast.Call, name: str, assigned: set[str], as_value: bool) -> str:
        allowed = API_KEYWORDS.get(name, set())
        for keyword in node.keywords:
            if keyword.arg not in allowed:
                raise self.error(keyword, f"{name} has no keyword argument {keyword.arg!r}"
                                 + (f" (it takes {', '.join(sorted(allowed))})" if allowed else ""))
            self.int_expr(keyword.value, assigned)
        args = list(node.args)
        for arg in args:
            if isinstance(arg, ast.Starred):
                raise self.module.refuse(arg)
        if name in ("send", "call"):
            if not args or not (isinstance(args[0], ast.Constant) and isinstance(args[0].value, str)):
                raise self.error(node, f"{name} needs the destination service's name as a string literal first")
            self.module.destinations.add(args[0].value)
            args = args[1:]
        elif name == "send_to":
            if not args:
                raise self.error(node, "send_to needs a node address first")
            self.int_expr(args[0], assigned)
            args = args[1:]
        if name in API_SENDERS:
            if not 1 <= len(args) <= MAX_WORDS:
                raise self.error(node, f"a message carries 1 to {MAX_WORDS} words, not {len(args)}")
        elif len(args) != API_FIXED_ARGS[name]:
            raise self.error(node, f"{name} takes {API_FIXED_ARGS[name]} argument(s)")
        for arg in args:
            self.int_expr(arg, assigned)
        if name in ("send", "send_to", "call"):
            self.check_host_tag(node, name)
        kind = API_VALUE.get(name)
        if as_value and kind is None:
            raise self.error(node, f"{name} returns nothing: it cannot be used as a value")
        return kind or INT


    def check_host_tag(self, node: ast.Call, name: str) -> None:
        """Refuse a send to the host with a tag the host reserves (docs/host-os.md): the host would take the
        message for a log line, a DOWN report, a snapshot or a reload fence."""
        tag = next((k.value for k in node.keywords if k.arg == "tag"), None)
        destination = node.args[0]
        if name == "send_to":
            to_host = self.module.constant_or_none(destination) == HOST_NODE
        else:
            to_host = isinstance(destination, ast.Constant) and destination.value == HOST_NAME
        value = self.module.constant_or_none(tag) if tag is not None else None
        if to_host and value is not None and value in HOST_RESERVED_TAGS:
            raise self.error(tag, f"tag 0x{value:04X} is reserved for the host: it is {HOST_RESERVED_TAGS[value]}")


def _is_message_source(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("receive", "call")


def _has_timeout(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Call) and any(k.arg == "timeout" for k in node.keywords)


def _breaks_out(body: list[ast.stmt]) -> bool:
    """Whether a `break` in body leaves the loop whose body it is (not an inner loop)."""
    stack: list[ast.AST] = list(body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Break):
            return True
        if not isinstance(node, (ast.For, ast.While, ast.FunctionDef)):
            stack.extend(ast.iter_child_nodes(node))
    return False
