#!/usr/bin/env python3
"""Every public symbol of a library product documented: reads the symbol graphs the DocC plugin
extracted for one module (scripts/check-docs.sh runs this after building each module's
documentation) and fails, naming file and line, when a public symbol has no doc comment.

    scripts/doc-coverage.py MODULE SYMBOL_GRAPH_DIR          # check
    scripts/doc-coverage.py --list MODULE SYMBOL_GRAPH_DIR   # every undocumented symbol, file:line

Not counted: what the compiler synthesized (Equatable's ==, Codable's init(from:), ...), extension
blocks of other modules' types (their members are counted), and implementations of a documented
protocol requirement, which DocC shows with the requirement's comment (the graph carries it).
"""
import glob, json, os, sys


def undocumented(directory):
    found = {}
    for path in sorted(glob.glob(os.path.join(directory, "*.symbols.json"))):
        with open(path) as file:
            graph = json.load(file)
        for symbol in graph["symbols"]:
            if symbol.get("accessLevel") not in ("public", "open"):
                continue
            if "::SYNTHESIZED::" in symbol["identifier"]["precise"] or symbol["kind"]["identifier"] == "swift.extension":
                continue
            comment = symbol.get("docComment", {}).get("lines", [])
            if any(line.get("text", "").strip() for line in comment):
                continue
            location = symbol.get("location", {})
            where = "%s:%d" % (location.get("uri", "?").replace("file://", ""), location.get("position", {}).get("line", -1) + 1)
            found.setdefault(".".join(symbol["pathComponents"]), where)
    return found


def main(arguments):
    listing = arguments[:1] == ["--list"]
    if listing:
        arguments = arguments[1:]
    if len(arguments) != 2:
        sys.exit(__doc__)
    module, directory = arguments
    if not glob.glob(os.path.join(directory, "*.symbols.json")):
        sys.exit("error: no symbol graphs of %s in %s" % (module, directory))
    found = undocumented(directory)
    for name, where in sorted(found.items(), key=lambda item: item[1]):
        if listing:
            print("%s  %s" % (where, name))
        else:
            print("%s: error: public symbol of %s without a doc comment: %s" % (where, module, name), file=sys.stderr)
    if listing:
        return 0
    if found:
        return 1
    print("documentation coverage: every public symbol of %s has a doc comment" % module)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
