/*
 * Private to the store module (its one public header is store.h): the small
 * strict XML reader for what S3 answers (listings, error documents, bucket
 * settings) and the escaper for what slipway sends it.
 *
 * A response body is hostile input, so the reader accepts only well-formed
 * XML 1.0 in UTF-8 and only the part of it S3 uses: an optional XML
 * declaration, comments, whitespace and one root element whose elements carry
 * text, CDATA and children. Attributes are checked and dropped (S3 puts
 * xmlns on the root, xsi:type on a Grantee). A DOCTYPE is refused outright, so
 * no entity can be declared and no "billion laughs" can grow from a small
 * body; processing instructions other than the declaration are refused too.
 * Everything is bounded (input, nesting, elements) and the parse is one pass,
 * iterative and linear in the input.
 *
 * The tree is plain data, immutable once returned, and may be read from
 * several threads; every function here is thread-safe.
 */
#ifndef SW_STORE_S3XML_H
#define SW_STORE_S3XML_H

#include "base/base.h"

#include <stddef.h>

#define S3XML_DEPTH_MAX 32                 /* nested elements, the root being 1 */
#define S3XML_NODES_MAX 1000000            /* elements in one document */
#define S3XML_INPUT_MAX (64 * 1024 * 1024) /* bytes of one document */
#define S3XML_ATTRS_MAX 32                 /* attributes on one element */

/* One element: name (without namespace prefix handling beyond keeping it as
 * written), its text (entities decoded, NUL-terminated; "" for none; the
 * concatenated character data directly inside it), children in document
 * order. */
struct s3xml_node {
    char *name;
    char *text;
    struct s3xml_node **kids;
    size_t n_kids;
};

/* Parses a whole document (an optional <?xml ...?> declaration, comments,
 * whitespace, one root element). Strict: well-formed only, at most
 * S3XML_DEPTH_MAX (32) nesting, S3XML_NODES_MAX (1,000,000) elements, input at
 * most S3XML_INPUT_MAX (64 MiB); entities &amp; &lt; &gt; &quot; &apos; &#NN;
 * &#xNN; (a code point encoded as UTF-8; 0, surrogates and > 0x10FFFF are
 * errors); attributes are parsed (quoted with ' or ") and ignored (S3 puts
 * xmlns on the root); CDATA sections are text; no DOCTYPE (an error: no entity
 * expansion attacks). Mismatched end tags, text after the root, NUL bytes:
 * errors. Line breaks are normalized as XML 1.0 section 2.11 says (CR LF and a
 * lone CR become LF); a CR written as &#13; stays a CR. *out: caller frees
 * with s3xml_free. Errors: SW_EINVAL with "line L, column C: what was
 * expected" in err (column in characters, both 1-based; names from the
 * document are shown escaped and cut short, so the message is one line). */
int s3xml_parse(const char *doc, size_t len, struct s3xml_node **out, struct sw_err *err);
/* Frees a tree s3xml_parse returned (NULL: nothing). */
void s3xml_free(struct s3xml_node *n);
/* The first child named name, or NULL. Borrowed from n. O(children). */
const struct s3xml_node *s3xml_child(const struct s3xml_node *n, const char *name);
/* The text of the first child named name, or NULL when there is none. */
const char *s3xml_text(const struct s3xml_node *n, const char *name);
/* Appends s to b with & < > " ' escaped, for building request documents.
 * A CR and the other control characters below 0x20 but tab and LF become
 * character references (&#13;), as S3 asks for keys holding them, so that
 * any UTF-8 string reads back unchanged through s3xml_parse. */
void s3xml_escape(struct buf *b, const char *s);

#endif
