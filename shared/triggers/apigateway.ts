import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { PAGE_HEADERS, type HttpRequest, type HttpResponse } from './http.js';

/** API Gateway HTTP API (payload v2) → HttpRequest, with the body exactly as sent (base64 decoded). */
export function fromApiGateway(event: APIGatewayProxyEventV2): HttpRequest {
  const headers = Object.fromEntries(Object.entries(event.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
  const body =
    event.body === undefined
      ? ''
      : event.isBase64Encoded
        ? Buffer.from(event.body, 'base64').toString('utf8')
        : event.body;
  return {
    method: event.requestContext.http.method,
    path: event.rawQueryString ? `${event.rawPath}?${event.rawQueryString}` : event.rawPath,
    headers,
    body,
  };
}

export function toApiGateway(res: HttpResponse): APIGatewayProxyStructuredResultV2 {
  if (res.html !== undefined) return { statusCode: res.status, headers: { ...PAGE_HEADERS }, body: res.html };
  return { statusCode: res.status, headers: { 'content-type': 'application/json' }, body: JSON.stringify(res.body) };
}
