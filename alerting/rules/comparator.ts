/**
 * Threshold with hysteresis (a Schmitt trigger): the condition becomes active beyond the threshold
 * (`> above` or `< below`) and stays active until the value is back past the clear level
 * (`<= clear` or `>= clear`; clear defaults to the threshold itself, i.e. no hysteresis).
 * A signal oscillating between clear and threshold therefore neither fires repeatedly nor flaps.
 */
export interface Comparison {
  above?: number | undefined;
  below?: number | undefined;
  clear?: number | undefined;
}

export function nextActive(c: Comparison, value: number, active: boolean): boolean {
  if (c.above !== undefined) return active ? value > (c.clear ?? c.above) : value > c.above;
  if (c.below !== undefined) return active ? value < (c.clear ?? c.below) : value < c.below;
  return false;
}

/** The level the alert reports as its threshold. */
export function thresholdOf(c: Comparison): number | undefined {
  return c.above ?? c.below;
}
