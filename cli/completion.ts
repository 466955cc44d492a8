import type { Command, Option } from 'commander';
import type { Io } from './output.js';

/** Every command of the tree with its path ("" for the program, "settings check" for a subcommand). */
function commands(root: Command, prefix = ''): Array<{ path: string; command: Command }> {
  return [
    { path: prefix, command: root },
    ...root.commands.flatMap((c) => commands(c, prefix ? `${prefix} ${c.name()}` : c.name())),
  ];
}

const flags = (o: Option): string[] => [o.short, o.long].filter((f): f is string => Boolean(f));
/** Options whose value is a path: completed with file names. */
const PATHS = new Set(['--dir', '--kubeconfig', '--out']);
const quote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** bash: the verbs, subcommands and options of the words typed so far; choices and file names for option values. */
function bash(program: Command): string {
  const all = commands(program);
  const globals = program.options.flatMap(flags);
  const words = all.map(({ path, command }) => {
    const own = [
      ...command.commands.map((c) => c.name()),
      ...(path ? [] : ['help']),
      ...command.options.flatMap(flags),
      '--help',
    ];
    return `    ${quote(path)}) echo ${quote([...own, ...(path ? globals : [])].join(' '))} ;;`;
  });
  const subs = all
    .filter(({ command }) => command.commands.length)
    .map(
      ({ path, command }) =>
        `    ${quote(path)}) echo ${quote([...command.commands.map((c) => c.name()), ...(path ? [] : ['help'])].join(' '))} ;;`,
    );
  const valued = all.flatMap(({ command }) => command.options.filter((o) => o.required || o.optional));
  const choices = new Map<string, string>();
  for (const o of valued) for (const f of flags(o)) if (o.argChoices) choices.set(f, o.argChoices.join(' '));
  const completionShells = all.find((c) => c.path === 'completion')?.command.registeredArguments[0]?.argChoices ?? [];
  const values = [...new Set(valued.flatMap(flags))];
  return `# tidegate completion for bash: source <(tidegate completion bash)
_tidegate_subs() {
  case "$1" in
${subs.join('\n')}
  esac
}
_tidegate_words() {
  case "$1" in
${words.join('\n')}
  esac
}
_tidegate() {
  local cur=\${COMP_WORDS[COMP_CWORD]} prev=\${COMP_WORDS[COMP_CWORD-1]} path="" w i
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=\${COMP_WORDS[i]}
    case " $(_tidegate_subs "$path") " in *" $w "*) path="\${path:+$path }$w" ;; esac
  done
  case "$prev" in
${[...choices].map(([f, c]) => `    ${f}) COMPREPLY=($(compgen -W ${quote(c)} -- "$cur")); return ;;`).join('\n')}
${[...PATHS].map((f) => `    ${f}) COMPREPLY=($(compgen -f -- "$cur")); return ;;`).join('\n')}
    ${values.filter((f) => !choices.has(f) && !PATHS.has(f)).join('|')}) COMPREPLY=(); return ;;
  esac
  if [[ "$path" == completion ]]; then COMPREPLY=($(compgen -W ${quote(completionShells.join(' '))} -- "$cur")); return; fi
  COMPREPLY=($(compgen -W "$(_tidegate_words "$path")" -- "$cur"))
}
complete -o default -F _tidegate tidegate
`;
}

/** fish: one complete line per verb, subcommand and option, conditioned on the verb typed. */
function fish(program: Command): string {
  const lines = ['# tidegate completion for fish: tidegate completion fish > ~/.config/fish/completions/tidegate.fish'];
  lines.push('complete -c tidegate -f');
  const option = (o: Option, condition: string): string => {
    const names = [o.short ? `-s ${o.short.slice(1)}` : '', o.long ? `-l ${o.long.slice(2)}` : ''].filter(Boolean);
    const value = o.argChoices
      ? ` -xa ${quote(o.argChoices.join(' '))}`
      : o.required || o.optional
        ? PATHS.has(o.long ?? '')
          ? ' -rF'
          : ' -x'
        : '';
    return `complete -c tidegate${condition} ${names.join(' ')}${value} -d ${quote(o.description)}`;
  };
  for (const o of program.options) lines.push(option(o, ''));
  for (const { path, command } of commands(program)) {
    const words = path.split(' ').filter(Boolean);
    const seen = words.length ? ` -n ${quote(`__fish_seen_subcommand_from ${words.at(-1) ?? ''}`)}` : '';
    const at = words.length ? seen : ` -n __fish_use_subcommand`;
    for (const c of command.commands)
      lines.push(`complete -c tidegate${at} -a ${c.name()} -d ${quote(c.description())}`);
    if (path) for (const o of command.options) lines.push(option(o, seen));
    for (const a of command.registeredArguments)
      if (a.argChoices) lines.push(`complete -c tidegate${seen} -a ${quote(a.argChoices.join(' '))}`);
  }
  return `${lines.join('\n')}\n`;
}

/** `tidegate completion bash|zsh|fish`: a completion script generated from the commands as they are. */
export function completionCommand(shell: string, program: Command, io: Io): number {
  if (shell === 'fish') io.out(fish(program));
  else if (shell === 'zsh')
    // zsh runs bash completion functions through bashcompinit: one script, the same words.
    io.out(
      `#compdef tidegate\n# tidegate completion for zsh: source <(tidegate completion zsh)\nautoload -U +X bashcompinit && bashcompinit\n${bash(program)}`,
    );
  else io.out(bash(program));
  return 0;
}
