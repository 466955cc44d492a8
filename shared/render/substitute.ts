/** What an undeclared variable becomes where the render only reads the configuration (see parseManifests). */
export const UNSET_MARK = 'unset-var-';
export const unsetValue = (name: string): string => `${UNSET_MARK}${name.toLowerCase().replace(/_/g, '-')}`;

/** `${VAR}` and `${VAR:=default}`; `$${VAR}` stays as the literal `${VAR}`. */
const VARIABLE = /\$(\$?)\{([A-Za-z_][A-Za-z0-9_]*)(?::=([^}]*))?\}/g;

/**
 * Replaces variables in text with declared values (Flux postBuild semantics, strict): a variable
 * that is neither declared nor given a default is reported, never silently emptied.
 */
export function substituteVariables(
  text: string,
  vars: Readonly<Record<string, string>>,
  unset?: (name: string) => string,
): { text: string; missing: string[] } {
  const missing = new Set<string>();
  const out = text.replace(VARIABLE, (whole, escape: string, name: string, fallback: string | undefined) => {
    if (escape) return whole.slice(1);
    const value = Object.hasOwn(vars, name) ? vars[name] : (fallback ?? unset?.(name));
    if (value === undefined) {
      missing.add(name);
      return whole;
    }
    return value;
  });
  return { text: out, missing: [...missing] };
}
