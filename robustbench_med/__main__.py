from robustbench_med.cli import entry

entry()
