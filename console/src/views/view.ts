import type { Session } from "../session";

export interface ViewContext {
  session: Session;
  /** Path parameters of the route (the run id of /runs/:id). */
  params: string[];
  query: URLSearchParams;
  /** Sets the document title ("<t> · Smithers"). */
  setTitle(t: string): void;
}

/** A view renders into root and returns what stops its timers, sockets and
 * listeners when the route changes. */
export type View = (root: HTMLElement, ctx: ViewContext) => (() => void) | void;
