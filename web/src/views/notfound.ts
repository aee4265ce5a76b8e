import { html } from 'lit-html';
import type { View } from '../ui';

export class NotFoundView implements View {
  readonly title = 'Page not found';
  constructor(private readonly path: string) {}
  busy() {
    return false;
  }
  render() {
    return html`<p class="empty">There is no page at <code>${this.path}</code> for this account.</p>`;
  }
}
