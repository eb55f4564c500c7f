/* Unit tests for the S3 XML reader (src/store/s3xml.c): the documents S3
 * answers with, in the shape the S3 API reference gives them (ListObjectsV2,
 * error documents, multipart, and each bucket setting `slipway infra` reads);
 * every refusal with its exact message, line and column; the bounds (nesting,
 * elements, input size) at and one past the limit; references and line breaks;
 * and keys round-tripped through s3xml_escape and s3xml_parse. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "store/s3xml.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct s3xml_node *ok(const char *doc)
{
    struct s3xml_node *root = NULL;
    struct sw_err err = {0};
    int rc = s3xml_parse(doc, strlen(doc), &root, &err);
    if (rc != 0)
        fprintf(stderr, "unexpected refusal: %s\n", err.msg);
    assert_int_equal(rc, 0);
    assert_non_null(root);
    return root;
}

/* Refused with exactly msg; n bytes of doc (strlen when n is 0). */
static void bad_n(const char *doc, size_t n, const char *msg)
{
    struct s3xml_node *root = (struct s3xml_node *)1;
    struct sw_err err = {0};
    assert_int_equal(s3xml_parse(doc, n ? n : strlen(doc), &root, &err), SW_EINVAL);
    assert_int_equal(err.code, SW_EINVAL);
    assert_null(root);
    if (strcmp(err.msg, msg) != 0)
        fprintf(stderr, "document: %s\nexpected: %s\n     got: %s\n", doc, msg, err.msg);
    assert_string_equal(err.msg, msg);
}

static void bad(const char *doc, const char *msg)
{
    bad_n(doc, 0, msg);
}

/* The text of the child at path ("Contents/Key"), asserting it exists. */
static const char *at_path(const struct s3xml_node *n, const char *path)
{
    char part[128];
    while (strchr(path, '/')) {
        size_t k = (size_t)(strchr(path, '/') - path);
        assert_true(k < sizeof(part));
        memcpy(part, path, k);
        part[k] = '\0';
        n = s3xml_child(n, part);
        assert_non_null(n);
        path += k + 1;
    }
    const char *t = s3xml_text(n, path);
    assert_non_null(t);
    return t;
}

/* ---- real documents ------------------------------------------------------------ */

static void test_list_objects_v2(void **state)
{
    (void)state;
    struct s3xml_node *r =
        ok("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
           "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\n"
           "    <Name>slipway-demo</Name>\n"
           "    <Prefix>releases/</Prefix>\n"
           "    <KeyCount>2</KeyCount>\n"
           "    <MaxKeys>2</MaxKeys>\n"
           "    <IsTruncated>true</IsTruncated>\n"
           "    <NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</"
           "NextContinuationToken>\n"
           "    <Contents>\n"
           "        <Key>releases/r-20261125-082506-123-9f3a1c.json</Key>\n"
           "        <LastModified>2026-11-25T08:25:06.000Z</LastModified>\n"
           "        <ETag>&quot;599bab3ed2c697f1d26842727561fd94&quot;</ETag>\n"
           "        <ChecksumAlgorithm>CRC32</ChecksumAlgorithm>\n"
           "        <Size>857</Size>\n"
           "        <StorageClass>STANDARD</StorageClass>\n"
           "    </Contents>\n"
           "    <Contents>\n"
           "        <Key>releases/r-b&amp;w.json</Key>\n"
           "        <LastModified>2026-11-25T08:25:07.000Z</LastModified>\n"
           "        <ETag>\"d41d8cd98f00b204e9800998ecf8427e-2\"</ETag>\n"
           "        <Size>0</Size>\n"
           "        <StorageClass>STANDARD</StorageClass>\n"
           "    </Contents>\n"
           "</ListBucketResult>\n");
    assert_string_equal(r->name, "ListBucketResult");
    assert_string_equal(s3xml_text(r, "IsTruncated"), "true");
    assert_string_equal(s3xml_text(r, "NextContinuationToken"),
                        "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=");
    assert_string_equal(s3xml_text(r, "KeyCount"), "2");
    assert_null(s3xml_text(r, "ContinuationToken"));
    assert_null(s3xml_child(r, "contents")); /* names are case-sensitive */
    /* Every Contents, in document order. */
    const char *keys[] = {"releases/r-20261125-082506-123-9f3a1c.json", "releases/r-b&w.json"};
    const char *etags[] = {"\"599bab3ed2c697f1d26842727561fd94\"",
                           "\"d41d8cd98f00b204e9800998ecf8427e-2\""};
    const char *sizes[] = {"857", "0"};
    size_t seen = 0;
    for (size_t i = 0; i < r->n_kids; i++) {
        const struct s3xml_node *c = r->kids[i];
        if (strcmp(c->name, "Contents") != 0)
            continue;
        assert_true(seen < 2);
        assert_string_equal(s3xml_text(c, "Key"), keys[seen]);
        assert_string_equal(s3xml_text(c, "ETag"), etags[seen]);
        assert_string_equal(s3xml_text(c, "Size"), sizes[seen]);
        assert_non_null(s3xml_text(c, "LastModified"));
        assert_int_equal(s3xml_child(c, "Key")->n_kids, 0);
        seen++;
    }
    assert_int_equal(seen, 2);
    assert_int_equal(r->n_kids, 8);
    /* The text directly inside the root is the indentation between its children. */
    assert_string_equal(r->text, "\n    \n    \n    \n    \n    \n    \n    \n    \n");
    s3xml_free(r);

    /* The last page: not truncated, no token, no Contents; an empty Prefix. */
    r = ok("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
           "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>b</Name>"
           "<Prefix></Prefix><KeyCount>0</KeyCount><MaxKeys>1000</MaxKeys>"
           "<IsTruncated>false</IsTruncated></ListBucketResult>");
    assert_string_equal(s3xml_text(r, "IsTruncated"), "false");
    assert_string_equal(s3xml_text(r, "Prefix"), "");
    assert_null(s3xml_child(r, "Contents"));
    assert_null(s3xml_text(r, "NextContinuationToken"));
    assert_string_equal(r->text, "");
    s3xml_free(r);
}

static void test_error_documents(void **state)
{
    (void)state;
    struct s3xml_node *r = ok("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                              "<Error>\n"
                              "  <Code>NoSuchKey</Code>\n"
                              "  <Message>The resource you requested does not exist</Message>\n"
                              "  <Resource>/mybucket/myfoto.jpg</Resource>\n"
                              "  <RequestId>4442587FB7D0A2F9</RequestId>\n"
                              "</Error>");
    assert_string_equal(r->name, "Error");
    assert_string_equal(s3xml_text(r, "Code"), "NoSuchKey");
    assert_string_equal(s3xml_text(r, "Message"), "The resource you requested does not exist");
    assert_string_equal(s3xml_text(r, "RequestId"), "4442587FB7D0A2F9");
    s3xml_free(r);

    /* As S3 sends it: one line, no whitespace between elements. */
    r = ok("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
           "<Error><Code>RequestTimeTooSkewed</Code><Message>The difference between the request "
           "time and the current time is too large.</Message><RequestTime>20261125T082506Z"
           "</RequestTime><ServerTime>2026-11-25T08:45:06Z</ServerTime>"
           "<MaxAllowedSkewMilliseconds>900000</MaxAllowedSkewMilliseconds>"
           "<RequestId>N7YBGJKQ4AZ1XJHE</RequestId><HostId>kCm9Hw0yqQ+fTyzq3FBK0oQEN4sGmPr3XW/"
           "u1h/KS6XqFvw6RpGQLZq8uXEm0kOVBGOTd8dFhYQ=</HostId></Error>");
    assert_string_equal(s3xml_text(r, "Code"), "RequestTimeTooSkewed");
    assert_string_equal(s3xml_text(r, "RequestTime"), "20261125T082506Z");
    assert_string_equal(s3xml_text(r, "ServerTime"), "2026-11-25T08:45:06Z");
    assert_string_equal(s3xml_text(r, "MaxAllowedSkewMilliseconds"), "900000");
    assert_string_equal(s3xml_text(r, "HostId"), "kCm9Hw0yqQ+fTyzq3FBK0oQEN4sGmPr3XW/"
                                                 "u1h/KS6XqFvw6RpGQLZq8uXEm0kOVBGOTd8dFhYQ=");
    assert_string_equal(r->text, "");
    s3xml_free(r);

    /* SignatureDoesNotMatch carries the string to sign, with its line breaks. */
    r = ok("<Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we "
           "calculated does not match the signature you provided.</Message><StringToSign>"
           "AWS4-HMAC-SHA256\n20261125T082506Z\n20261125/us-east-1/s3/aws4_request\nabc"
           "</StringToSign><RequestId>1</RequestId></Error>");
    assert_string_equal(s3xml_text(r, "StringToSign"),
                        "AWS4-HMAC-SHA256\n20261125T082506Z\n20261125/us-east-1/s3/aws4_request\n"
                        "abc");
    s3xml_free(r);
}

static void test_multipart(void **state)
{
    (void)state;
    struct s3xml_node *r =
        ok("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
           "<InitiateMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\n"
           "  <Bucket>example-bucket</Bucket>\n"
           "  <Key>blobs/sha256/ab/abcdef</Key>\n"
           "  <UploadId>VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA</UploadId>\n"
           "</InitiateMultipartUploadResult>");
    assert_string_equal(r->name, "InitiateMultipartUploadResult");
    assert_string_equal(s3xml_text(r, "UploadId"),
                        "VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA");
    assert_string_equal(s3xml_text(r, "Key"), "blobs/sha256/ab/abcdef");
    s3xml_free(r);

    r = ok("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
           "<ListMultipartUploadsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\n"
           "  <Bucket>bucket</Bucket>\n"
           "  <KeyMarker></KeyMarker>\n"
           "  <UploadIdMarker></UploadIdMarker>\n"
           "  <NextKeyMarker>my-movie.m2ts</NextKeyMarker>\n"
           "  <NextUploadIdMarker>YW55IGlkZWEgd2h5IGVsdmluZydzIHVwbG9hZCBmYWlsZWQ</"
           "NextUploadIdMarker>\n"
           "  <MaxUploads>3</MaxUploads>\n"
           "  <IsTruncated>true</IsTruncated>\n"
           "  <Upload>\n"
           "    <Key>my-divisor</Key>\n"
           "    <UploadId>XMgbGlrZSBlbHZpbmcncyBub3QgaGF2aW5nIG11Y2ggbHVjaw</UploadId>\n"
           "    <Initiator>\n"
           "      <ID>arn:aws:iam::111122223333:user/user1-11111a31-17b5-4fb7-9df5-"
           "b111111f13de</ID>\n"
           "      <DisplayName>user1-11111a31-17b5-4fb7-9df5-b111111f13de</DisplayName>\n"
           "    </Initiator>\n"
           "    <Owner>\n"
           "      <ID>75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7c6caea54ba06a</ID>\n"
           "      <DisplayName>OwnerDisplayName</DisplayName>\n"
           "    </Owner>\n"
           "    <StorageClass>STANDARD</StorageClass>\n"
           "    <Initiated>2010-11-10T20:48:33.000Z</Initiated>\n"
           "  </Upload>\n"
           "  <Upload>\n"
           "    <Key>my-movie.m2ts</Key>\n"
           "    <UploadId>VXBsb2FkIElEIGZvciBlbHZpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA</UploadId>\n"
           "    <StorageClass>STANDARD</StorageClass>\n"
           "    <Initiated>2010-11-10T20:48:33.000Z</Initiated>\n"
           "  </Upload>\n"
           "</ListMultipartUploadsResult>");
    assert_string_equal(s3xml_text(r, "NextKeyMarker"), "my-movie.m2ts");
    assert_string_equal(s3xml_text(r, "KeyMarker"), "");
    assert_string_equal(at_path(r, "Upload/Initiator/DisplayName"),
                        "user1-11111a31-17b5-4fb7-9df5-b111111f13de");
    assert_string_equal(at_path(r, "Upload/Owner/DisplayName"), "OwnerDisplayName");
    size_t uploads = 0;
    for (size_t i = 0; i < r->n_kids; i++)
        uploads += strcmp(r->kids[i]->name, "Upload") == 0;
    assert_int_equal(uploads, 2);
    assert_string_equal(s3xml_text(r->kids[r->n_kids - 1], "Key"), "my-movie.m2ts");
    s3xml_free(r);
}

static void test_bucket_settings(void **state)
{
    (void)state;
    /* GetBucketVersioning: enabled, and a bucket that never had it (an empty root). */
    struct s3xml_node *r =
        ok("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
           "<VersioningConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
           "<Status>Enabled</Status></VersioningConfiguration>");
    assert_string_equal(s3xml_text(r, "Status"), "Enabled");
    assert_null(s3xml_text(r, "MfaDelete"));
    s3xml_free(r);
    r = ok("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
           "<VersioningConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"/>");
    assert_string_equal(r->name, "VersioningConfiguration");
    assert_int_equal(r->n_kids, 0);
    assert_null(r->kids);
    assert_string_equal(r->text, "");
    assert_null(s3xml_text(r, "Status"));
    s3xml_free(r);

    r = ok("<ServerSideEncryptionConfiguration "
           "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\n"
           "  <Rule>\n"
           "    <ApplyServerSideEncryptionByDefault>\n"
           "      <SSEAlgorithm>aws:kms</SSEAlgorithm>\n"
           "      <KMSMasterKeyID>arn:aws:kms:us-east-1:1234/5678example</KMSMasterKeyID>\n"
           "    </ApplyServerSideEncryptionByDefault>\n"
           "    <BucketKeyEnabled>true</BucketKeyEnabled>\n"
           "  </Rule>\n"
           "</ServerSideEncryptionConfiguration>");
    assert_string_equal(at_path(r, "Rule/ApplyServerSideEncryptionByDefault/SSEAlgorithm"),
                        "aws:kms");
    assert_string_equal(at_path(r, "Rule/ApplyServerSideEncryptionByDefault/KMSMasterKeyID"),
                        "arn:aws:kms:us-east-1:1234/5678example");
    assert_string_equal(at_path(r, "Rule/BucketKeyEnabled"), "true");
    s3xml_free(r);

    r = ok("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
           "<PublicAccessBlockConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\n"
           "   <BlockPublicAcls>true</BlockPublicAcls>\n"
           "   <IgnorePublicAcls>true</IgnorePublicAcls>\n"
           "   <BlockPublicPolicy>false</BlockPublicPolicy>\n"
           "   <RestrictPublicBuckets>true</RestrictPublicBuckets>\n"
           "</PublicAccessBlockConfiguration>");
    assert_string_equal(s3xml_text(r, "BlockPublicAcls"), "true");
    assert_string_equal(s3xml_text(r, "IgnorePublicAcls"), "true");
    assert_string_equal(s3xml_text(r, "BlockPublicPolicy"), "false");
    assert_string_equal(s3xml_text(r, "RestrictPublicBuckets"), "true");
    s3xml_free(r);

    r = ok("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
           "<LifecycleConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\n"
           "  <Rule>\n"
           "    <ID>noncurrent-versions</ID>\n"
           "    <Filter><Prefix></Prefix></Filter>\n"
           "    <Status>Enabled</Status>\n"
           "    <NoncurrentVersionExpiration><NoncurrentDays>30</NoncurrentDays>"
           "</NoncurrentVersionExpiration>\n"
           "  </Rule>\n"
           "  <Rule>\n"
           "    <ID>incomplete-uploads</ID>\n"
           "    <Filter/>\n"
           "    <Status>Enabled</Status>\n"
           "    <AbortIncompleteMultipartUpload><DaysAfterInitiation>1</DaysAfterInitiation>"
           "</AbortIncompleteMultipartUpload>\n"
           "  </Rule>\n"
           "  <Rule>\n"
           "    <ID>logs</ID>\n"
           "    <Filter><Prefix>logs/</Prefix></Filter>\n"
           "    <Status>Enabled</Status>\n"
           "    <Expiration><Days>90</Days></Expiration>\n"
           "  </Rule>\n"
           "</LifecycleConfiguration>");
    assert_int_equal(r->n_kids, 3);
    assert_string_equal(at_path(r->kids[0], "NoncurrentVersionExpiration/NoncurrentDays"), "30");
    assert_string_equal(at_path(r->kids[0], "Filter/Prefix"), "");
    assert_string_equal(at_path(r->kids[1], "AbortIncompleteMultipartUpload/DaysAfterInitiation"),
                        "1");
    assert_int_equal(s3xml_child(r->kids[1], "Filter")->n_kids, 0);
    assert_string_equal(at_path(r->kids[2], "Filter/Prefix"), "logs/");
    assert_string_equal(at_path(r->kids[2], "Expiration/Days"), "90");
    s3xml_free(r);

    /* Logging, with the Grantee's namespace attributes, prefixed, single-quoted. */
    r = ok("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
           "<BucketLoggingStatus xmlns=\"http://doc.s3.amazonaws.com/2006-03-01\">\n"
           "  <LoggingEnabled>\n"
           "    <TargetBucket>slipway-logs</TargetBucket>\n"
           "    <TargetPrefix>access/</TargetPrefix>\n"
           "    <TargetGrants>\n"
           "      <Grant>\n"
           "        <Grantee xmlns:xsi='http://www.w3.org/2001/XMLSchema-instance' "
           "xsi:type='AmazonCustomerByEmail'>\n"
           "          <EmailAddress>user@company.com</EmailAddress>\n"
           "        </Grantee>\n"
           "        <Permission>READ</Permission>\n"
           "      </Grant>\n"
           "    </TargetGrants>\n"
           "  </LoggingEnabled>\n"
           "</BucketLoggingStatus>");
    assert_string_equal(at_path(r, "LoggingEnabled/TargetBucket"), "slipway-logs");
    assert_string_equal(at_path(r, "LoggingEnabled/TargetPrefix"), "access/");
    assert_string_equal(at_path(r, "LoggingEnabled/TargetGrants/Grant/Grantee/EmailAddress"),
                        "user@company.com");
    s3xml_free(r);
    /* Logging off: an empty status. */
    r = ok("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
           "<BucketLoggingStatus xmlns=\"http://doc.s3.amazonaws.com/2006-03-01\" />");
    assert_null(s3xml_child(r, "LoggingEnabled"));
    s3xml_free(r);
}

/* ---- what else is accepted ------------------------------------------------------- */

static void test_accepted_forms(void **state)
{
    (void)state;
    struct s3xml_node *r;

    /* No declaration, comments and whitespace around the root, a BOM. */
    r = ok("<!-- before --> \n<a><!-- inside -->x<!---->y</a>\n<!-- after -->\n");
    assert_string_equal(r->text, "xy");
    s3xml_free(r);
    r = ok("\xef\xbb\xbf<?xml version='1.0'?><a/>");
    assert_string_equal(r->name, "a");
    s3xml_free(r);
    r = ok("<?xml version=\"1.1\" encoding=\"utf-8\" standalone=\"yes\" ?>\n<a/>");
    s3xml_free(r);
    r = ok("<?xml version = \"1.0\"\tencoding='UTF-8'?><a/>");
    s3xml_free(r);

    /* Names as written, prefixes kept; whitespace inside tags. */
    r = ok("<s3:R\n  xmlns:s3=\"urn:x\"\t a = 'v' ><s3:K>1</s3:K\n><_x.y-z9 /></s3:R >");
    assert_string_equal(r->name, "s3:R");
    assert_string_equal(s3xml_text(r, "s3:K"), "1");
    assert_null(s3xml_text(r, "K"));
    assert_string_equal(s3xml_text(r, "_x.y-z9"), "");
    s3xml_free(r);

    /* Attribute values may hold '>', references and the other quote. */
    r = ok("<a x=\"1 > 0 &amp; it's &#x41;\" y='say \"hi\"'>t</a>");
    assert_string_equal(r->text, "t");
    s3xml_free(r);

    /* CDATA is text, taken raw; text around children is concatenated. */
    r = ok("<a>one<![CDATA[ <b>&amp;</b> ]] ]]>two<b>inner</b>three<![CDATA[]]></a>");
    assert_string_equal(r->text, "one <b>&amp;</b> ]] twothree");
    assert_string_equal(s3xml_text(r, "b"), "inner");
    s3xml_free(r);

    /* '>' and "]]" alone are ordinary text. */
    r = ok("<a>x > y ]] ]>]</a>");
    assert_string_equal(r->text, "x > y ]] ]>]");
    s3xml_free(r);

    /* Non-ASCII names and text. */
    r = ok("<r><Clé>værdi ☃ 🚀</Clé></r>");
    assert_string_equal(s3xml_text(r, "Clé"), "værdi ☃ 🚀");
    s3xml_free(r);

    /* The same child name twice: s3xml_child gives the first. */
    r = ok("<r><k>1</k><k>2</k></r>");
    assert_string_equal(s3xml_text(r, "k"), "1");
    assert_null(s3xml_child(NULL, "k"));
    assert_null(s3xml_text(NULL, "k"));
    s3xml_free(r);
    s3xml_free(NULL);
}

static void test_entities(void **state)
{
    (void)state;
    struct s3xml_node *r;

    r = ok("<a>&amp;&lt;&gt;&quot;&apos;</a>");
    assert_string_equal(r->text, "&<>\"'");
    s3xml_free(r);
    /* Decoded once: "&amp;lt;" is the four characters "&lt;". */
    r = ok("<a>&amp;lt;&amp;amp;&amp;#65;</a>");
    assert_string_equal(r->text, "&lt;&amp;&#65;");
    s3xml_free(r);
    /* Character references in every width, leading zeros, both cases of hex. */
    r = ok("<a>&#65;&#x42;&#x0043;&#0000068;&#xe9;&#xE9;&#233;&#x20AC;&#x1F680;&#128640;"
           "&#x10FFFF;&#xFFFF;&#1;&#x7F;</a>");
    assert_string_equal(r->text, "ABCD\xc3\xa9\xc3\xa9\xc3\xa9\xe2\x82\xac\xf0\x9f\x9a\x80"
                                 "\xf0\x9f\x9a\x80\xf4\x8f\xbf\xbf\xef\xbf\xbf\x01\x7f");
    s3xml_free(r);
    /* A CR written as a reference stays a CR; a literal one becomes LF
     * (section 2.11), CR LF one LF, also inside CDATA. */
    r = ok("<a>1&#13;\n2\r\n3\r4\r\r\n5<![CDATA[6\r\n7\r]]>\r</a>");
    assert_string_equal(r->text, "1\r\n2\n3\n4\n\n5"
                                 "6\n7\n\n");
    s3xml_free(r);
    /* The widest the largest code point can be written, and far wider. */
    r = ok("<a>&#x00000000000000000000000010FFFF;</a>");
    assert_string_equal(r->text, "\xf4\x8f\xbf\xbf");
    s3xml_free(r);

    bad("<a>&foo;</a>", "line 1, column 4: expected one of &amp; &lt; &gt; &quot; &apos;, "
                        "found &foo; (no other entity exists here)");
    bad("<a>&AMP;</a>", "line 1, column 4: expected one of &amp; &lt; &gt; &quot; &apos;, "
                        "found &AMP; (no other entity exists here)");
    bad("<a>a & b</a>",
        "line 1, column 6: expected a reference (&amp; &lt; &gt; &quot; &apos; &#N; &#xN;) "
        "after '&'");
    bad("<a>&amp</a>",
        "line 1, column 4: expected a reference (&amp; &lt; &gt; &quot; &apos; &#N; &#xN;) "
        "after '&'");
    bad("<a>&;</a>",
        "line 1, column 4: expected a reference (&amp; &lt; &gt; &quot; &apos; &#N; &#xN;) "
        "after '&'");
    bad("<a>&#;</a>", "line 1, column 6: expected decimal digits in the character reference");
    bad("<a>&#x;</a>", "line 1, column 7: expected hexadecimal digits in the character reference");
    bad("<a>&#X41;</a>", "line 1, column 6: expected decimal digits in the character reference");
    bad("<a>&#65</a>", "line 1, column 8: expected ';' to end the character reference");
    bad("<a>&#6a;</a>", "line 1, column 7: expected ';' to end the character reference");
    bad("<a>&#0;</a>",
        "line 1, column 4: expected a character reference to a character, found one to U+0000");
    bad("<a>&#x0000;</a>",
        "line 1, column 4: expected a character reference to a character, found one to U+0000");
    bad("<a>&#xD800;</a>",
        "line 1, column 4: expected a character reference to a character, found one to a "
        "surrogate");
    bad("<a>&#57343;</a>",
        "line 1, column 4: expected a character reference to a character, found one to a "
        "surrogate");
    bad("<a>&#x110000;</a>",
        "line 1, column 4: expected a character reference to a character, found one to beyond "
        "U+10FFFF");
    bad("<a>&#99999999999999999999999999;</a>",
        "line 1, column 4: expected a character reference to a character, found one to beyond "
        "U+10FFFF");
    bad("<a>&#xFFFFFFFF1;</a>",
        "line 1, column 4: expected a character reference to a character, found one to beyond "
        "U+10FFFF");
    /* References in attribute values are checked too. */
    bad("<a x='&nbsp;'/>", "line 1, column 7: expected one of &amp; &lt; &gt; &quot; &apos;, "
                           "found &nbsp; (no other entity exists here)");
    bad("<a x='&#0;'/>",
        "line 1, column 7: expected a character reference to a character, found one to U+0000");
}

/* ---- refusals ------------------------------------------------------------------------ */

static void test_structure_errors(void **state)
{
    (void)state;
    bad("", "line 1, column 1: expected the root element, found the end of the document");
    bad(" \n\t", "line 2, column 2: expected the root element, found the end of the document");
    bad("<!-- only a comment -->",
        "line 1, column 24: expected the root element, found the end of the document");
    bad("hello<a/>", "line 1, column 1: expected '<' to start the root element, found text");
    bad("<a></b>", "line 1, column 4: expected </a>, found </b>");
    bad("<a><b></a></b>", "line 1, column 7: expected </b>, found </a>");
    bad("<Key>x</key>", "line 1, column 7: expected </Key>, found </key>");
    bad("<ab></a>", "line 1, column 5: expected </ab>, found </a>");
    bad("<a></ab>", "line 1, column 4: expected </a>, found </ab>");
    bad("<a>", "line 1, column 4: expected </a>, found the end of the document");
    bad("<a><b>text", "line 1, column 11: expected </b>, found the end of the document");
    bad("<a></a", "line 1, column 7: expected '>' to end </a>");
    bad("<a></a x>", "line 1, column 8: expected '>' to end </a>");
    bad("<a></ a>", "line 1, column 6: expected an element name after '</'");
    bad("<a/>x", "line 1, column 5: expected the end of the document, found text after the root "
                 "element");
    bad("<a/>\n  <b/>", "line 2, column 3: expected the end of the document, found a second root "
                        "element");
    bad("<a></a>\n&amp;", "line 2, column 1: expected the end of the document, found text after "
                          "the root element");
    bad("<a/><![CDATA[x]]>", "line 1, column 5: expected the end of the document after the root "
                             "element, found a '<!' declaration (refused)");
    bad("<![CDATA[x]]><a/>",
        "line 1, column 1: expected the root element, found a '<!' declaration (refused)");
    bad("< a/>", "line 1, column 1: expected the root element");
    bad("<1a/>", "line 1, column 1: expected the root element");
    bad("<a>< b/></a>", "line 1, column 4: expected an element, an end tag, a comment or CDATA");
    bad("<a>x<</a>", "line 1, column 5: expected an element, an end tag, a comment or CDATA");
    bad("<a", "line 1, column 3: expected '>' to end <a>, found the end of the document");
    bad("<a/", "line 1, column 3: expected whitespace, '>' or '/>' in <a>");
    bad("<a x='1'", "line 1, column 9: expected '>' to end <a>, found the end of the document");
    bad("<a>]]></a>", "line 1, column 4: expected text, found ']]>' outside a CDATA section");
    bad("<a>x]]]></a>", "line 1, column 6: expected text, found ']]>' outside a CDATA section");
    bad("<a><![CDATA[x]]</a>", "line 1, column 4: expected ']]>' to end this CDATA section");

    /* Comments (section 2.5). */
    bad("<a><!-- x </a>", "line 1, column 4: expected '-->' to end this comment");
    bad("<a><!-- a -- b --></a>",
        "line 1, column 11: expected '-->': '--' may not occur in a comment");
    bad("<a><!-- x ---></a>", "line 1, column 11: expected '-->': '--' may not occur in a comment");
    bad("<a><!---></a>", "line 1, column 4: expected '-->' to end this comment");
    bad("<!-- x", "line 1, column 1: expected '-->' to end this comment");
    bad("<a/><!-- x -- -->", "line 1, column 12: expected '-->': '--' may not occur in a comment");
}

static void test_markup_refused(void **state)
{
    (void)state;
    /* The billion laughs never starts: a DOCTYPE is refused wherever it is. */
    bad("<?xml version=\"1.0\"?>\n"
        "<!DOCTYPE lolz [\n"
        " <!ENTITY lol \"lol\">\n"
        " <!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n"
        "]>\n"
        "<lolz>&lol2;</lolz>",
        "line 2, column 1: expected the root element, found a DOCTYPE (refused: no entity "
        "declarations)");
    bad("<!DOCTYPE a SYSTEM \"file:///etc/passwd\"><a>&xxe;</a>",
        "line 1, column 1: expected the root element, found a DOCTYPE (refused: no entity "
        "declarations)");
    bad("<a><!DOCTYPE a></a>",
        "line 1, column 4: expected an element, an end tag, a comment or CDATA, found a DOCTYPE "
        "(refused: no entity declarations)");
    bad("<a/><!DOCTYPE a>", "line 1, column 5: expected the end of the document after the root "
                            "element, found a DOCTYPE (refused: no entity declarations)");
    bad("<a><!ENTITY x 'y'></a>", "line 1, column 4: expected an element, an end tag, a comment "
                                  "or CDATA, found a '<!' declaration (refused)");
    /* Processing instructions, and the declaration anywhere but the start. */
    bad("<?xml-stylesheet href='a'?><a/>",
        "line 1, column 1: expected the root element, found a processing instruction (refused)");
    bad("<a><?php echo 1; ?></a>", "line 1, column 4: expected an element, an end tag, a comment "
                                   "or CDATA, found a processing instruction (refused)");
    bad(" <?xml version=\"1.0\"?><a/>", "line 1, column 2: expected the root element, found an "
                                        "XML declaration (only allowed at the very start)");
    bad("<?xml version=\"1.0\"?><?xml version=\"1.0\"?><a/>",
        "line 1, column 22: expected the root element, found an XML declaration (only allowed at "
        "the very start)");
    bad("<a><?xml version=\"1.0\"?></a>",
        "line 1, column 4: expected an element, an end tag, a comment or CDATA, found an XML "
        "declaration (only allowed at the very start)");
    /* The declaration itself. */
    bad("<?xml?><a/>", "line 1, column 6: expected whitespace and version after '<?xml'");
    bad("<?xml", "line 1, column 6: expected whitespace and version after '<?xml'");
    bad("<?xml ?><a/>", "line 1, column 7: expected version=\"1.0\" in the XML declaration");
    bad("<?xml encoding=\"UTF-8\"?><a/>",
        "line 1, column 7: expected version first in the XML declaration, found encoding");
    bad("<?xml version=\"2.0\"?><a/>", "line 1, column 16: expected version=\"1.0\"");
    bad("<?xml version=\"1.\"?><a/>", "line 1, column 16: expected version=\"1.0\"");
    bad("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a/>",
        "line 1, column 31: expected encoding=\"UTF-8\" (the only encoding read)");
    bad("<?xml version=\"1.0\" standalone=\"maybe\"?><a/>",
        "line 1, column 33: expected standalone=\"yes\" or \"no\"");
    bad("<?xml version=\"1.0\" standalone=\"yes\" encoding=\"UTF-8\"?><a/>",
        "line 1, column 38: expected '?>' in the XML declaration, found encoding");
    bad("<?xml version=\"1.0\" encoding=\"UTF-8\" encoding=\"UTF-8\"?><a/>",
        "line 1, column 38: expected each attribute once, found encoding again");
    bad("<?xml version=\"1.0\" encoding=\"UTF-8\" version=\"1.0\"?><a/>",
        "line 1, column 38: expected each attribute once, found version again");
    bad("<?xml version=\"1.0\" encoding=\"UTF-8\" foo=\"1\"?><a/>",
        "line 1, column 38: expected standalone or '?>' in the XML declaration, found foo");
    bad("<?xml version=\"1.0\" foo=\"1\"?><a/>",
        "line 1, column 21: expected encoding, standalone or '?>' in the XML declaration, found "
        "foo");
    bad("<?xml version=\"1.0\"encoding=\"UTF-8\"?><a/>",
        "line 1, column 20: expected whitespace or '?>' in the XML declaration");
    bad("<?xml version=\"1.0\"", "line 1, column 20: expected '?>' to end the XML declaration");
}

static void test_attribute_errors(void **state)
{
    (void)state;
    bad("<a x=1/>", "line 1, column 6: expected a quoted attribute value (' or \")");
    bad("<a x/>", "line 1, column 5: expected '=' after the attribute name x");
    bad("<a x='1/>", "line 1, column 6: expected the closing ' of this attribute value");
    bad("<a x=\"1'/>", "line 1, column 6: expected the closing \" of this attribute value");
    bad("<a x='<'/>", "line 1, column 7: expected the closing ' of the attribute value, found '<'");
    bad("<a x='1'y='2'/>", "line 1, column 9: expected whitespace, '>' or '/>' in <a>");
    bad("<a x='1' x='2'/>", "line 1, column 10: expected each attribute once, found x again");
    bad("<a xmlns='u' b:c='1' xmlns='v'/>",
        "line 1, column 22: expected each attribute once, found xmlns again");
    bad("<a =''/>", "line 1, column 4: expected an attribute name, '>' or '/>'");
    bad("<a / >", "line 1, column 4: expected an attribute name, '>' or '/>'");
    /* At most S3XML_ATTRS_MAX attributes. */
    struct buf b = BUF_INIT;
    buf_adds(&b, "<a");
    for (int i = 0; i < S3XML_ATTRS_MAX; i++)
        buf_addf(&b, " a%02d=''", i);
    buf_adds(&b, "/>");
    struct s3xml_node *r = ok(b.data);
    s3xml_free(r);
    b.len -= 2;
    buf_adds(&b, " z=''/>");
    char msg[128];
    snprintf(msg, sizeof(msg), "line 1, column %d: expected at most %d attributes on one element",
             3 + S3XML_ATTRS_MAX * 7 + 1, S3XML_ATTRS_MAX);
    bad(b.data, msg);
    buf_free(&b);
}

static void test_bytes_refused(void **state)
{
    (void)state;
    /* A NUL anywhere, even where a C string would have ended the document. */
    bad_n("<a>x\0y</a>", 10, "line 1, column 5: expected a character, found a NUL byte");
    bad_n("<a/>\0", 5, "line 1, column 5: expected a character, found a NUL byte");
    bad_n("<a x='\0'/>", 10, "line 1, column 7: expected a character, found a NUL byte");
    bad("<a>\x01</a>", "line 1, column 4: expected a character, found the control byte 0x01");
    bad("<a>\n\x1b[31m</a>", "line 2, column 1: expected a character, found the control byte 0x1b");
    bad("<a>\xff</a>", "line 1, column 4: expected UTF-8, found the byte 0xff");
    bad("<a>\xc0\xaf</a>", "line 1, column 4: expected UTF-8, found the byte 0xc0");
    bad("<a>\xe0\x80\xaf</a>",
        "line 1, column 4: expected UTF-8, found an overlong or out-of-range sequence");
    bad("<a>\xed\xa0\x80</a>",
        "line 1, column 4: expected UTF-8, found an overlong or out-of-range sequence");
    bad("<a>\xf4\x90\x80\x80</a>",
        "line 1, column 4: expected UTF-8, found an overlong or out-of-range sequence");
    bad("<a>\xc3(</a>", "line 1, column 4: expected UTF-8, found a malformed sequence");
    bad("<a/>\xe2\x82", "line 1, column 5: expected UTF-8, found a sequence cut short by the end");
    bad("<a>\xef\xbf\xbf</a>",
        "line 1, column 4: expected a character, found U+FFFF (not a character)");
    /* Columns count characters, not bytes; lines end at LF, CR LF and CR. */
    bad("<a>\xc3\xa9\xe2\x98\x83\xf0\x9f\x9a\x80\x01</a>",
        "line 1, column 7: expected a character, found the control byte 0x01");
    bad("<a>\r\n\r\n\rx</b>", "line 4, column 2: expected </a>, found </b>");
    bad("<a>\n\n  <b>\xc3\xa9</c></a>", "line 3, column 7: expected </b>, found </c>");
}

static void test_names_in_messages(void **state)
{
    (void)state;
    /* A name from the document is cut short and escaped in the message. */
    struct buf doc = BUF_INIT;
    buf_adds(&doc, "<");
    for (int i = 0; i < 100; i++)
        buf_adds(&doc, "N");
    buf_adds(&doc, "></x>");
    struct sw_err err = {0};
    struct s3xml_node *r = NULL;
    assert_int_equal(s3xml_parse(doc.data, doc.len, &r, &err), SW_EINVAL);
    assert_non_null(strstr(err.msg, "line 1, column 103: expected </NNNN"));
    assert_non_null(strstr(err.msg, "NNN...>, found </x>"));
    assert_true(strlen(err.msg) < 64 + 64);
    buf_free(&doc);
    /* A bidirectional override in a name is shown as an escape, never raw. */
    bad("<a\xe2\x80\xae></b>", "line 1, column 5: expected </a\\u202e>, found </b>");
}

/* ---- bounds ---------------------------------------------------------------------------- */

static char *nested(int depth)
{
    struct buf b = BUF_INIT;
    for (int i = 0; i < depth; i++)
        buf_adds(&b, "<d>");
    buf_adds(&b, "deep");
    for (int i = 0; i < depth; i++)
        buf_adds(&b, "</d>");
    return buf_detach(&b, NULL);
}

static void test_depth(void **state)
{
    (void)state;
    char *doc = nested(S3XML_DEPTH_MAX);
    struct s3xml_node *r = ok(doc), *n = r;
    for (int i = 1; i < S3XML_DEPTH_MAX; i++) {
        assert_int_equal(n->n_kids, 1);
        n = n->kids[0];
    }
    assert_string_equal(n->text, "deep");
    s3xml_free(r);
    free(doc);

    doc = nested(S3XML_DEPTH_MAX + 1);
    bad(doc, "line 1, column 97: expected at most 32 nested elements");
    free(doc);
    /* Empty elements count as a level too. */
    struct buf b = BUF_INIT;
    for (int i = 0; i < S3XML_DEPTH_MAX; i++)
        buf_adds(&b, "<d>");
    buf_adds(&b, "<e/>");
    bad(b.data, "line 1, column 97: expected at most 32 nested elements");
    buf_free(&b);
    /* A million levels deep costs nothing: refused at level 33. */
    doc = nested(1000000);
    bad(doc, "line 1, column 97: expected at most 32 nested elements");
    free(doc);
}

static void test_node_limit(void **state)
{
    (void)state;
    /* The root and S3XML_NODES_MAX - 1 children: accepted. */
    struct buf b = BUF_INIT;
    buf_adds(&b, "<r>");
    for (int i = 0; i < S3XML_NODES_MAX - 1; i++)
        buf_adds(&b, "<a/>");
    buf_adds(&b, "</r>");
    struct s3xml_node *r = ok(b.data);
    assert_int_equal(r->n_kids, S3XML_NODES_MAX - 1);
    assert_string_equal(r->kids[S3XML_NODES_MAX - 2]->name, "a");
    s3xml_free(r);
    /* One more: refused at that element. */
    b.len -= 4;
    buf_adds(&b, "<a/></r>");
    bad(b.data, "line 1, column 4000000: expected at most 1000000 elements in one document");
    buf_free(&b);
}

static void test_input_limit(void **state)
{
    (void)state;
    /* Exactly S3XML_INPUT_MAX bytes parse; one more is refused before any is read. */
    size_t n = S3XML_INPUT_MAX;
    char *doc = xmalloc(n + 1);
    memcpy(doc, "<a><!--", 7);
    memset(doc + 7, 'x', n - 7 - 7);
    memcpy(doc + n - 7, "--></a>", 7);
    struct s3xml_node *r = NULL;
    struct sw_err err = {0};
    assert_int_equal(s3xml_parse(doc, n, &r, &err), 0);
    assert_string_equal(r->text, "");
    s3xml_free(r);
    doc[n] = ' ';
    bad_n(doc, n + 1,
          "line 1, column 1: expected a document of at most 67108864 bytes, found 67108865");
    free(doc);
}

/* ---- escaping ------------------------------------------------------------------------------ */

static void round_trip(const char *key)
{
    struct buf b = BUF_INIT;
    buf_adds(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Delete><Object><Key>");
    s3xml_escape(&b, key);
    buf_adds(&b, "</Key></Object></Delete>");
    struct s3xml_node *r = ok(b.data);
    assert_string_equal(at_path(r, "Object/Key"), key);
    s3xml_free(r);
    buf_free(&b);
}

static void test_escape(void **state)
{
    (void)state;
    struct buf b = BUF_INIT;
    s3xml_escape(&b, "a&b<c>d\"e'f");
    assert_string_equal(b.data, "a&amp;b&lt;c&gt;d&quot;e&apos;f");
    buf_reset(&b);
    s3xml_escape(&b, "");
    assert_int_equal(b.len, 0);
    s3xml_escape(&b, "plain/key-1.json");
    assert_string_equal(b.data, "plain/key-1.json");
    buf_reset(&b);
    /* CR as S3 asks (&#13;); tab and LF stay; other controls as references. */
    s3xml_escape(&b, "1\r2\n3\t4\x01"
                     "5\x1f");
    assert_string_equal(b.data, "1&#13;2\n3\t4&#1;5&#31;");
    buf_free(&b);

    round_trip("releases/r-1.json");
    round_trip("d\xc3\xa9j\xc3\xa0 vu/\xe2\x98\x83 \xf0\x9f\x9a\x80/<tag> & \"q\" 'a' ]]> &amp;");
    round_trip("line\r\nbreaks\rand\ttabs\n");
    round_trip("&#65; &lt; <![CDATA[x]]> <!-- c -->");
    /* Every byte from 1 to 127, then every 2-byte lead with a continuation. */
    char all[256];
    for (int i = 1; i < 128; i++)
        all[i - 1] = (char)i;
    all[127] = '\0';
    round_trip(all);
    size_t k = 0;
    for (int c = 0xc2; c <= 0xdf; c++) {
        all[k++] = (char)c;
        all[k++] = (char)(0x80 + (c & 0x3f));
    }
    all[k] = '\0';
    round_trip(all);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_list_objects_v2),
        cmocka_unit_test(test_error_documents),
        cmocka_unit_test(test_multipart),
        cmocka_unit_test(test_bucket_settings),
        cmocka_unit_test(test_accepted_forms),
        cmocka_unit_test(test_entities),
        cmocka_unit_test(test_structure_errors),
        cmocka_unit_test(test_markup_refused),
        cmocka_unit_test(test_attribute_errors),
        cmocka_unit_test(test_bytes_refused),
        cmocka_unit_test(test_names_in_messages),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_node_limit),
        cmocka_unit_test(test_input_limit),
        cmocka_unit_test(test_escape),
    };
    return cmocka_run_group_tests_name("s3xml", tests, NULL, NULL);
}
