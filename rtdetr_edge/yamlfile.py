"""Reading the YAML files users share (devices, runtimes, recipes, policies, calibration lists) as data, never
as instructions or a resource bomb.

- `yaml.SafeLoader` (no Python objects), and on top of it:
- no anchors or aliases (`&a` / `*a`): our files need none, and nested aliases expand exponentially (a
  333-byte "billion laughs" file takes gigabytes);
- no duplicate keys (YAML says the last one silently wins; a reviewer reads the first);
- at most MAX_BYTES per file.

Every problem is one UserError naming the file and line. Device side: PyYAML only.
"""

from pathlib import Path

from .errors import UserError

MAX_BYTES = 256 * 1024  # the largest shipped file is a few KB


def load(path):
    """The parsed content of one YAML file under the rules above."""
    import yaml

    class Loader(yaml.SafeLoader):
        def compose_node(self, parent, index):
            event = self.peek_event()
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                raise yaml.MarkedYAMLError(problem="anchors and aliases (&name, *name) are not allowed in this "
                                                   "file; write the values out", problem_mark=event.start_mark)
            return super().compose_node(parent, index)

        def construct_mapping(self, node, deep=False):
            seen = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                try:
                    duplicate = key in seen
                except TypeError:  # an unhashable key: the base class says so
                    break
                if duplicate:
                    raise yaml.MarkedYAMLError(problem=f"duplicate key {key!r}", problem_mark=key_node.start_mark)
                seen.add(key)
            return super().construct_mapping(node, deep=deep)

    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise UserError(f"{path}: {size} bytes; these files are at most {MAX_BYTES} bytes")
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read it ({e.strerror or e})") from None
    # what yaml.safe_load does, with the stricter SafeLoader above (safe_load takes no Loader)
    loader = Loader(text)
    try:
        return loader.get_single_data()
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise UserError(f"{path}:{where}: not valid YAML ({problem})") from None
    except RecursionError:
        raise UserError(f"{path}: nested too deeply") from None
    finally:
        loader.dispose()
