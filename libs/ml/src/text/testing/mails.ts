/** Small hand-written mails covering the shapes the featurizer must read. */

export const PLAIN_HAM = `From alice@example.org  Thu Aug 22 12:36:23 2002
Return-Path: <alice@example.org>
Received: from mail.example.org (mail.example.org [192.0.2.1])
\tby mx.example.net (Postfix) with ESMTP id D03E543C36
\tfor <bob@example.net>; Thu, 22 Aug 2002 07:36:16 -0400 (EDT)
From: Alice <alice@example.org>
To: bob@example.net
Subject: Re: lunch on
 Thursday?
List-Id: Friends of lunch <lunch.lists.example.org>
Message-Id: <1234@example.org>
X-Mailer: Mutt 1.4i
Precedence: list

Hi Bob, shall we meet at noon? The café is open.
`;

export const MULTIPART_SPAM = `From: "Best Deals" <deals@spam.example.biz>
Reply-To: offers@other.example.com
Subject: =?utf-8?B?RlJFRSBtb25leSDwn5Kw?=
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="XYZ"

This is a multi-part message in MIME format.

--XYZ
Content-Type: text/plain; charset=iso-8859-1
Content-Transfer-Encoding: quoted-printable

Win a fr=E9e prize today! Click=
 now.
--XYZ
Content-Type: text/html; charset="utf-8"
Content-Transfer-Encoding: base64

${Buffer.from('<html><body><p>Cheap <b>pills</b> &amp; more at <a href="http://www.pills.example.com/buy">our shop</a></p><script>evil()</script></body></html>').toString('base64')}
--XYZ
Content-Type: image/gif; name="x.gif"
Content-Transfer-Encoding: base64

R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7
--XYZ--
`;

/** Subject 中国你好, body 你好世界, both GB2312 in base64. */
export const CHINESE_SPAM = `From: sales@example.cn
Subject: =?gb2312?B?${Buffer.from([0xd6, 0xd0, 0xb9, 0xfa, 0xc4, 0xe3, 0xba, 0xc3]).toString('base64')}?=
Content-Type: text/plain; charset=gb2312
Content-Transfer-Encoding: base64

${Buffer.from([0xc4, 0xe3, 0xba, 0xc3, 0xca, 0xc0, 0xbd, 0xe7]).toString('base64')}
`;

export const JAPANESE_HAM = `From: taro@example.jp
Subject: 会議の件
Content-Type: text/plain; charset=utf-8

明日の会議はコーヒーの後です。
`;
