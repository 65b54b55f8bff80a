#!/bin/bash
# A small stand-in for devstack's function library, for running devstack/plugin.sh in tests.
#
# The ini functions follow devstack's inc/ini-config behaviour (written anew here, not copied):
#   iniset [-sudo] FILE SECTION OPTION VALUE
#       creates FILE and appends "\n[SECTION]" when the section is missing; inserts
#       "OPTION = VALUE" right after the section header when the option is missing from it;
#       otherwise replaces the value of that option inside that section only, keeping the
#       "OPTION =" prefix as written. Other sections and options are never touched. An empty
#       SECTION or OPTION does nothing.
#   iniget FILE SECTION OPTION       prints the value, surrounding whitespace removed.
#   inidelete [-sudo] FILE SECTION OPTION, ini_has_option FILE SECTION OPTION.
# An option line matches when it starts with OPTION followed by optional blanks and "=";
# a section spans from its "[SECTION]" header line to the next line starting with "[".
# Everything else records its call in $FAKE_DEVSTACK_CALLS (one line per call) so tests can
# check what would have been installed or cloned.

FAKE_DEVSTACK_CALLS=${FAKE_DEVSTACK_CALLS:-/dev/null}

function _fake_record {
    echo "$*" >> "$FAKE_DEVSTACK_CALLS"
}

# awk program shared by the ini functions: marks lines inside SECTION and option matches.
# shellcheck disable=SC2016  # $0 etc. belong to awk
_FAKE_INI_AWK_LIB='
function is_header(line) { return substr(line, 1, 1) == "[" }
function is_our_header(line) { return substr(line, 1, length(sec) + 2) == "[" sec "]" }
function is_our_option(line,    rest) {
    if (substr(line, 1, length(opt)) != opt) return 0
    rest = substr(line, length(opt) + 1)
    return rest ~ /^[ \t]*=/
}
'

function ini_has_option {
    local file=$1 section=$2 option=$3
    [[ -f "$file" ]] || return 1
    awk -v sec="$section" -v opt="$option" "$_FAKE_INI_AWK_LIB"'
        is_header($0) { inside = is_our_header($0); next }
        inside && is_our_option($0) { found = 1 }
        END { exit found ? 0 : 1 }
    ' "$file"
}

function iniget {
    local file=$1 section=$2 option=$3
    [[ -f "$file" ]] || { echo ""; return 0; }
    awk -v sec="$section" -v opt="$option" "$_FAKE_INI_AWK_LIB"'
        is_header($0) { inside = is_our_header($0); next }
        inside && is_our_option($0) { text = (n++ ? text "\n" : "") $0 }
        END {
            sub(/^[^=]*=/, "", text)
            gsub(/[ \t\n]+/, " ", text)
            sub(/^ /, "", text); sub(/ $/, "", text)
            print text
        }
    ' "$file"
}

function inidelete {
    [[ "$1" == "-sudo" ]] && shift
    local file=$1 section=$2 option=$3
    [[ -z "$section" || -z "$option" || ! -f "$file" ]] && return 0
    local tmp
    tmp=$(mktemp)
    awk -v sec="$section" -v opt="$option" "$_FAKE_INI_AWK_LIB"'
        is_header($0) { inside = is_our_header($0); print; next }
        inside && is_our_option($0) { next }
        { print }
    ' "$file" > "$tmp" && cat "$tmp" > "$file"
    rm -f "$tmp"
}

function iniset {
    [[ "$1" == "-sudo" ]] && shift
    local file=$1 section=$2 option=$3 value=$4
    [[ -z "$section" || -z "$option" ]] && return 0
    if [[ ! -f "$file" ]] || ! awk -v sec="$section" "$_FAKE_INI_AWK_LIB"'
            is_our_header($0) { found = 1 } END { exit found ? 0 : 1 }' "$file"; then
        printf '\n[%s]\n' "$section" >> "$file"
    fi
    local mode=insert
    if ini_has_option "$file" "$section" "$option"; then
        mode=replace
    fi
    local tmp
    tmp=$(mktemp)
    awk -v sec="$section" -v opt="$option" -v val="$value" -v mode="$mode" \
        "$_FAKE_INI_AWK_LIB"'
        is_header($0) {
            inside = is_our_header($0)
            print
            if (inside && mode == "insert") print opt " = " val
            next
        }
        inside && mode == "replace" && is_our_option($0) {
            match($0, /^[^=]*=[ \t]*/)
            print substr($0, 1, RLENGTH) val
            next
        }
        { print }
    ' "$file" > "$tmp" && cat "$tmp" > "$file"
    rm -f "$tmp"
}

# is_service_enabled SERVICE...: true when any of them is in the comma-separated
# $ENABLED_SERVICES, as devstack's does; a project name (glance, swift, ironic, ...) stands
# for any of its services (g-*, s-*, ir-*, ...).
function is_service_enabled {
    local service prefix
    for service in "$@"; do
        [[ ",${ENABLED_SERVICES}," == *",${service},"* ]] && return 0
        case $service in
            glance) prefix=g- ;;
            swift) prefix=s- ;;
            nova) prefix=n- ;;
            cinder) prefix=c- ;;
            neutron) prefix=q- ;;
            ironic) prefix=ir- ;;
            *) continue ;;
        esac
        [[ ",${ENABLED_SERVICES}" == *",${prefix}"* ]] && return 0
    done
    return 1
}

function enable_service {
    local service
    for service in "$@"; do
        is_service_enabled "$service" || ENABLED_SERVICES+="${ENABLED_SERVICES:+,}$service"
    done
}

# trueorfalse DEFAULT VARNAME: the variable's value normalised to True/False, DEFAULT when
# unset or empty; anything else is an error, as in devstack.
function trueorfalse {
    local default=$1
    local value=${!2:-}
    case $value in
        "") echo "$default" ;;
        1|yes|Yes|YES|true|True|TRUE|on|On|ON) echo "True" ;;
        0|no|No|NO|false|False|FALSE|off|Off|OFF) echo "False" ;;
        *) die $LINENO "Argument '$value' of $2 is not a boolean" ;;
    esac
}

function die {
    shift  # $LINENO
    echo "ERROR: $*" >&2
    exit 1
}

function echo_summary {
    echo "SUMMARY: $*"
}

function apache_site_config_for { echo "$FAKE_APACHE_SITES/$1.conf"; }
function enable_apache_site { _fake_record enable_apache_site "$@"; }
function restart_apache_server { _fake_record restart_apache_server "$@"; }
function sudo { "$@"; }
function define_plugin { _fake_record define_plugin "$@"; }
function plugin_requires { _fake_record plugin_requires "$@"; }
function setup_develop { _fake_record setup_develop "$@"; }
function pip_install { _fake_record pip_install "$@"; }
function git_clone { _fake_record git_clone "$@"; mkdir -p "$2/dib"; }
