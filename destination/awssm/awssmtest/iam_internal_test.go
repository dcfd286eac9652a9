package awssmtest

import "testing"

func TestGlob(t *testing.T) {
	for _, c := range []struct {
		pattern, s string
		want       bool
	}{
		{"*", "", true},
		{"*", "arn:aws:secretsmanager:us-east-1:1:secret:a-AbCdEf", true},
		{"arn:aws:secretsmanager:us-east-1:1:secret:vault/*", "arn:aws:secretsmanager:us-east-1:1:secret:vault/kv/x-AbCdEf", true},
		{"arn:aws:secretsmanager:us-east-1:1:secret:vault/*", "arn:aws:secretsmanager:us-east-1:1:secret:other/x-AbCdEf", false},
		{"arn:*:secret:db-??????", "arn:aws:secretsmanager:us-east-1:1:secret:db-AbCdEf", true},
		{"arn:*:secret:db-??????", "arn:aws:secretsmanager:us-east-1:1:secret:db-AbCdE", false},
		{"a*b*c", "aXXbYYc", true},
		{"a*b*c", "aXXcYYb", false},
		{"abc", "abcd", false},
	} {
		if got := glob(c.pattern, c.s); got != c.want {
			t.Errorf("glob(%q, %q) = %v, want %v", c.pattern, c.s, got, c.want)
		}
	}
}

func TestConditionHolds(t *testing.T) {
	req := authRequest{reqTags: map[string]string{"managed-by": "secretsync"}, resTags: map[string]string{"team": "payments"}}
	for _, c := range []struct {
		op, key string
		values  []string
		want    bool
	}{
		{"StringEquals", "aws:RequestTag/managed-by", []string{"secretsync"}, true},
		{"StringEquals", "AWS:requesttag/managed-by", []string{"other", "secretsync"}, true},
		{"StringEquals", "aws:RequestTag/managed-by", []string{"other"}, false},
		{"StringEquals", "aws:ResourceTag/managed-by", []string{"secretsync"}, false}, // absent
		{"StringNotEquals", "aws:ResourceTag/managed-by", []string{"secretsync"}, true},
		{"StringNotEquals", "aws:RequestTag/managed-by", []string{"secretsync"}, false},
		{"StringLike", "secretsmanager:ResourceTag/team", []string{"pay*"}, true},
		{"StringNotLike", "secretsmanager:ResourceTag/team", []string{"pay*"}, false},
		{"Null", "aws:ResourceTag/managed-by", []string{"true"}, true},
		{"Null", "aws:ResourceTag/team", []string{"true"}, false},
		{"Null", "aws:ResourceTag/team", []string{"false"}, true},
	} {
		cond := condition{op: c.op, key: c.key, values: c.values}
		if got := cond.holds(req); got != c.want {
			t.Errorf("%s %s %v = %v, want %v", c.op, c.key, c.values, got, c.want)
		}
	}
}
