#!/bin/bash
# devstack/plugin.sh - ironic-configdrive devstack plugin.
#
# Plugin contract: https://docs.openstack.org/devstack/latest/plugins.html
# Runs after ironic's own plugin in every phase (plugin_requires in settings), so:
#   stack/install      installs this project with its [conductor] extra next to ironic;
#   stack/post-config  edits the ironic.conf that ironic's configure_ironic has just written
#                      (ironic-api/conductor only start in ironic's stack/extra) and builds the
#                      IPA ramdisk with the agent extension;
#   stack/extra        checks the deploy interface imports in the conductor's Python;
#   stack/test-config  writes tempest.conf [ironic_configdrive] for the scenario;
#   clean              removes the ramdisk files this plugin built.
# Variables: devstack/settings. Functions used from devstack: is_service_enabled,
# setup_develop, iniset, iniget, trueorfalse, git_clone, pip_install, echo_summary, die.

# Build the deploy ramdisk: IPA + this project's agent extension.
#
# Why here and not through ironic's own variables: ironic's lib/ironic (openstack/ironic
# devstack/lib/ironic, build_ipa_dib_ramdisk and upload_baremetal_ironic_deploy) passes
# IRONIC_DIB_RAMDISK_OPTIONS to disk-image-create as extra elements but pins ELEMENTS_PATH to
# "$IRONIC_PYTHON_AGENT_BUILDER_DIR/dib", so an element from another repository cannot be
# added that way; and it skips building when the files named by IRONIC_DEPLOY_KERNEL and
# IRONIC_DEPLOY_RAMDISK already exist, uploading them instead. So this runs in post-config,
# before ironic's stack/extra, builds the same image (IRONIC_DIB_RAMDISK_OPTIONS,
# IRONIC_DIB_RAMDISK_RELEASE, IRONIC_PYTHON_AGENT_BUILDER_REPO/_BRANCH/_DIR,
# IRONIC_PYTHON_AGENT_DIR) plus our element, and leaves it where ironic will pick it up.
function ironic_configdrive_build_ramdisk {
    if [[ -z "$IRONIC_DEPLOY_KERNEL" || -z "$IRONIC_DEPLOY_RAMDISK" ]]; then
        die $LINENO "IRONIC_DEPLOY_KERNEL/IRONIC_DEPLOY_RAMDISK are not set: is ironic's" \
            "devstack plugin enabled before ironic-configdrive?"
    fi
    if [[ -e "$IRONIC_DEPLOY_KERNEL" && -e "$IRONIC_DEPLOY_RAMDISK" ]]; then
        echo_summary "ironic-configdrive: keeping existing deploy ramdisk $IRONIC_DEPLOY_RAMDISK" \
            "(delete it to rebuild with the configdrive agent extension)"
        return 0
    fi
    if [[ "${IRONIC_RAMDISK_TYPE:-dib}" != "dib" ]]; then
        die $LINENO "ironic-configdrive builds its agent extension into DIB ramdisks only;" \
            "IRONIC_RAMDISK_TYPE is '$IRONIC_RAMDISK_TYPE'. Set IRONIC_RAMDISK_TYPE=dib, or" \
            "IRONIC_CONFIGDRIVE_BUILD_RAMDISK=False and provide a ramdisk with agent_ext."
    fi
    echo_summary "ironic-configdrive: building the IPA ramdisk with the configdrive extension"

    if ! type -P disk-image-create >/dev/null; then
        pip_install diskimage-builder
    fi
    git_clone "$IRONIC_PYTHON_AGENT_BUILDER_REPO" "$IRONIC_PYTHON_AGENT_BUILDER_DIR" \
        "$IRONIC_PYTHON_AGENT_BUILDER_BRANCH"

    local tempdir
    tempdir=$(mktemp -d --tmpdir="${DEST:-/tmp}" ironic-configdrive-ramdisk.XXXXXX)
    local -a elements
    # Word splitting is wanted: the options are a space-separated element list.
    read -r -a elements <<< "${IRONIC_DIB_RAMDISK_OPTIONS:-${IRONIC_DIB_RAMDISK_OS:-debian-minimal}}"
    elements+=(ironic-python-agent-ramdisk ironic-configdrive-agent)
    if [[ "${IRONIC_DEPLOY_ISO_REQUIRED:-False}" == "True" ]]; then
        elements+=(iso)
    fi

    local -a repolocation=()
    if [[ -d "${IRONIC_PYTHON_AGENT_DIR:-}" ]]; then
        repolocation=(DIB_REPOLOCATION_ironic_python_agent="$IRONIC_PYTHON_AGENT_DIR")
    fi
    if ! env ELEMENTS_PATH="$IRONIC_PYTHON_AGENT_BUILDER_DIR/dib:$IRONIC_CONFIGDRIVE_ELEMENTS_DIR" \
            DIB_RELEASE="${IRONIC_DIB_RAMDISK_RELEASE:-}" \
            DIB_IRONIC_CONFIGDRIVE_SOURCE="$IRONIC_CONFIGDRIVE_DIR" \
            "${repolocation[@]}" \
            disk-image-create -o "$tempdir/ironic-agent" "${elements[@]}"; then
        rm -rf "$tempdir"
        die $LINENO "disk-image-create failed building the IPA ramdisk with elements:" \
            "${elements[*]} (ELEMENTS_PATH $IRONIC_PYTHON_AGENT_BUILDER_DIR/dib:" \
            "$IRONIC_CONFIGDRIVE_ELEMENTS_DIR); see its output above"
    fi
    mkdir -p "$(dirname "$IRONIC_DEPLOY_KERNEL")" "$(dirname "$IRONIC_DEPLOY_RAMDISK")"
    mv "$tempdir/ironic-agent.kernel" "$IRONIC_DEPLOY_KERNEL"
    mv "$tempdir/ironic-agent.initramfs" "$IRONIC_DEPLOY_RAMDISK"
    if [[ "${IRONIC_DEPLOY_ISO_REQUIRED:-False}" == "True" && -n "${IRONIC_DEPLOY_ISO:-}" ]]; then
        mv "$tempdir/ironic-agent.iso" "$IRONIC_DEPLOY_ISO"
    fi
    rm -rf "$tempdir"
    # Remembered for unstack/clean: only files this plugin built are ever removed.
    echo "$IRONIC_DEPLOY_KERNEL" > "$IRONIC_CONFIGDRIVE_BUILT_LIST"
    echo "$IRONIC_DEPLOY_RAMDISK" >> "$IRONIC_CONFIGDRIVE_BUILT_LIST"
}

# Print the comma-separated list $1 with $2 appended unless already present; empty items
# (",,", trailing commas) are dropped.
function ironic_configdrive_list_add {
    local list=$1
    local item=$2
    local result=""
    local entry
    local found=0
    local -a entries
    IFS=',' read -r -a entries <<< "$list"
    for entry in "${entries[@]}"; do
        entry=${entry//[[:space:]]/}
        [[ -z "$entry" ]] && continue
        [[ "$entry" == "$item" ]] && found=1
        result+="${result:+,}$entry"
    done
    if [[ $found == 0 ]]; then
        result+="${result:+,}$item"
    fi
    echo "$result"
}

function ironic_configdrive_configure {
    local conf=$IRONIC_CONF_FILE
    if [[ -z "$conf" ]]; then
        die $LINENO "IRONIC_CONF_FILE is not set: is ironic's devstack plugin enabled?"
    fi

    # Keep whatever ironic enabled (direct, ramdisk, fake, ...) and add ours once.
    local enabled
    enabled=$(iniget "$conf" DEFAULT enabled_deploy_interfaces)
    enabled=${enabled:-${IRONIC_ENABLED_DEPLOY_INTERFACES:-direct}}
    enabled=$(ironic_configdrive_list_add "$enabled" configdrive)
    iniset "$conf" DEFAULT enabled_deploy_interfaces "$enabled"
    # ironic's test-config phase copies this variable into tempest.conf.
    IRONIC_ENABLED_DEPLOY_INTERFACES=$enabled

    # Ironic accepts a deploy interface for a node only if the node's hardware type lists
    # that class (ironic_configdrive/hardware.py); enable our variant of each type it has.
    local configured types base
    configured=$(iniget "$conf" DEFAULT enabled_hardware_types)
    configured=${configured:-${IRONIC_ENABLED_HARDWARE_TYPES:-}}
    types=$configured
    local -a bases
    IFS=',' read -r -a bases <<< "$configured"
    for base in "${bases[@]}"; do
        base=${base//[[:space:]]/}
        case $base in
            ipmi|redfish|manual-management)
                types=$(ironic_configdrive_list_add "$types" "$base-configdrive") ;;
        esac
    done
    if [[ "$types" != "$configured" ]]; then
        iniset "$conf" DEFAULT enabled_hardware_types "$types"
        IRONIC_ENABLED_HARDWARE_TYPES=$types
    fi

    local store=$IRONIC_CONFIGDRIVE_STORE
    if [[ -z "$store" ]]; then
        if is_service_enabled s-proxy; then
            store=swift
        else
            store=http
        fi
    fi
    case $store in
        swift|http) ;;
        *) die $LINENO "IRONIC_CONFIGDRIVE_STORE must be swift or http, not '$store'" ;;
    esac
    case $IRONIC_CONFIGDRIVE_EXPOSURE in
        partition|virtual_media|auto) ;;
        *) die $LINENO "IRONIC_CONFIGDRIVE_EXPOSURE must be partition, virtual_media or" \
               "auto, not '$IRONIC_CONFIGDRIVE_EXPOSURE'" ;;
    esac

    iniset "$conf" configdrive store "$store"
    if [[ "$store" == "swift" ]]; then
        iniset "$conf" configdrive swift_container "$IRONIC_CONFIGDRIVE_SWIFT_CONTAINER"
        iniset "$conf" configdrive swift_temp_url_duration \
            "$IRONIC_CONFIGDRIVE_SWIFT_TEMP_URL_DURATION"
    fi
    iniset "$conf" configdrive exposure "$IRONIC_CONFIGDRIVE_EXPOSURE"
    if [[ "$IRONIC_CONFIGDRIVE_EXPOSURE" != "auto" ]]; then
        # The tempest scenario then sets instance_info/configdrive_exposure, which a deploy
        # may only choose where the operator allows it.
        iniset "$conf" configdrive allow_instance_overrides configdrive_exposure
    fi
    iniset "$conf" configdrive format "$IRONIC_CONFIGDRIVE_FORMAT"
}

# Ironic's devstack serves IRONIC_HTTP_DIR through Apache with "Options Indexes": a GET of
# our folder would list the secret names of config drives and virtual media copies (and the
# store's validate refuses such a server). A <Directory> section for the folder applies
# after the one for the root, whatever the order of the files, so it turns listings off
# there (and for the store's probe directory below it) without touching ironic's site.
function ironic_configdrive_configure_apache {
    if [[ -z "${IRONIC_HTTP_DIR:-}" ]]; then
        return 0
    fi
    local site
    site=$(apache_site_config_for ironic-configdrive)
    if [[ ! -d "$(dirname "$site")" ]]; then
        echo_summary "ironic-configdrive: no Apache here; make sure whatever serves" \
            "$IRONIC_HTTP_DIR never lists $IRONIC_HTTP_DIR/configdrive"
        return 0
    fi
    sudo tee "$site" > /dev/null <<EOF
# ironic-configdrive: config drive file names are secrets; never list them.
<Directory "$IRONIC_HTTP_DIR/configdrive">
    Options -Indexes
</Directory>
EOF
    enable_apache_site ironic-configdrive
    restart_apache_server
}

# [ironic_configdrive] of tempest.conf for ironic_configdrive_tempest (install it with
# TEMPEST_PLUGINS="$IRONIC_CONFIGDRIVE_DIR" in local.conf). Image settings follow what
# ironic's own ironic_configure_tempest gives its whole-disk tests.
function ironic_configdrive_configure_tempest {
    local conf=$TEMPEST_CONFIG
    iniset "$conf" ironic_configdrive enabled True
    if [[ "${IRONIC_AUTH_STRATEGY:-keystone}" == "noauth" ]]; then
        iniset "$conf" ironic_configdrive auth noauth
        iniset "$conf" ironic_configdrive endpoint \
            "${IRONIC_SERVICE_PROTOCOL:-http}://${IRONIC_HOSTPORT}"
    else
        iniset "$conf" ironic_configdrive auth keystone
    fi
    iniset "$conf" ironic_configdrive node "$IRONIC_CONFIGDRIVE_TEMPEST_NODE"
    case ${IRONIC_DEPLOY_DRIVER:-} in
        ipmi|redfish|manual-management)
            iniset "$conf" ironic_configdrive driver "$IRONIC_DEPLOY_DRIVER-configdrive" ;;
    esac
    if [[ "$IRONIC_CONFIGDRIVE_EXPOSURE" != "auto" ]]; then
        iniset "$conf" ironic_configdrive exposure "$IRONIC_CONFIGDRIVE_EXPOSURE"
    fi
    local image="${IRONIC_WHOLEDISK_IMAGE_NAME:-}"
    if [[ -z "$image" ]]; then
        die $LINENO "IRONIC_WHOLEDISK_IMAGE_NAME is not set: no whole-disk image for the" \
            "config drive scenario"
    fi
    if is_service_enabled glance; then
        local image_id
        image_id=$(openstack image show "$image" -f value -c id)
        iniset "$conf" ironic_configdrive image_source "$image_id"
    else
        iniset "$conf" ironic_configdrive image_source \
            "http://${IRONIC_HTTP_SERVER}:${IRONIC_HTTP_PORT}/${image}.img"
        local checksum
        checksum=$(md5sum "$FILES/${image}.img" | cut -d' ' -f1)
        iniset "$conf" ironic_configdrive image_checksum "$checksum"
    fi
}

function ironic_configdrive_cleanup {
    local path
    if [[ -f "$IRONIC_CONFIGDRIVE_BUILT_LIST" ]]; then
        while read -r path; do
            [[ -n "$path" ]] && rm -f "$path"
        done < "$IRONIC_CONFIGDRIVE_BUILT_LIST"
        rm -f "$IRONIC_CONFIGDRIVE_BUILT_LIST"
    fi
}

IRONIC_CONFIGDRIVE_BUILT_LIST=${IRONIC_CONFIGDRIVE_BUILT_LIST:-${DATA_DIR:-/tmp}/ironic-configdrive-built}

if is_service_enabled ironic-configdrive; then
    if [[ "$1" == "stack" && "$2" == "install" ]]; then
        echo_summary "Installing ironic-configdrive"
        setup_develop "$IRONIC_CONFIGDRIVE_DIR" conductor

    elif [[ "$1" == "stack" && "$2" == "post-config" ]]; then
        echo_summary "Configuring ironic for ironic-configdrive"
        ironic_configdrive_configure
        ironic_configdrive_configure_apache
        if [[ "$IRONIC_CONFIGDRIVE_BUILD_RAMDISK" == "True" ]]; then
            ironic_configdrive_build_ramdisk
        else
            echo_summary "ironic-configdrive: not building a ramdisk; the partition exposure" \
                "needs agent_ext in the IPA ramdisk ironic uses"
        fi

    elif [[ "$1" == "stack" && "$2" == "extra" ]]; then
        # Ironic is up now: a plain import check catches a broken install before tempest.
        if ! "$IRONIC_CONFIGDRIVE_PYTHON" -c "import ironic_configdrive.deploy"; then
            die $LINENO "ironic_configdrive.deploy does not import with" \
                "$IRONIC_CONFIGDRIVE_PYTHON (the conductor's Python); reinstall with:" \
                "pip install -e ${IRONIC_CONFIGDRIVE_DIR}[conductor]"
        fi

    elif [[ "$1" == "stack" && "$2" == "test-config" ]]; then
        if is_service_enabled tempest && [[ "$IRONIC_CONFIGDRIVE_TEMPEST" == "True" ]]; then
            echo_summary "Configuring tempest for ironic-configdrive"
            ironic_configdrive_configure_tempest
        fi
    fi

    # unstack: nothing of ours runs on its own (ironic-conductor loads the deploy interface and
    # ironic's plugin stops it). clean: remove the ramdisk files this plugin built.
    if [[ "$1" == "clean" ]]; then
        ironic_configdrive_cleanup
    fi
fi
